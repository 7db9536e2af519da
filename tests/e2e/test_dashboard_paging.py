"""The dashboard's jobs list in a real headless Chromium: the first page, then "load more"
fetches the next page by cursor and appends it (no limit doubling, no repeated rows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .test_cli_server import ROOT
from .test_dashboard import login, page  # noqa: F401  (the Chromium fixture)

JOBS = str(ROOT / "tests" / "integration" / "jobs_plugin.py")
KEY = "hk_dashboard_paging_key_0123456789"

pytestmark = pytest.mark.slow


def test_jobs_load_more_appends_the_next_page_by_cursor(server_factory: Any, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    server = server_factory([JOBS], HERALD_API_KEY=KEY)
    server.start()
    with server.client() as api:
        for i in range(60):
            body = {"name": "square", "params": {"n": i}, "executor": "inline"}
            assert api.post("/v1/jobs", json=body).status_code == 202
        first = api.get("/v1/jobs", params={"limit": 50}).json()
        rest = api.get("/v1/jobs", params={"limit": 50, "cursor": first["next_cursor"]}).json()
    newest_first = [j["id"] for j in first["data"] + rest["data"]]
    assert len(newest_first) == 60 and rest["next_cursor"] is None

    login(page, server)  # waits for the overview: a navigation before the cookie is set would race
    page.goto(server.url + "/#/jobs")
    rows = page.locator("#jobs tr[data-job]")
    expect(rows).to_have_count(50)
    more = page.locator("#jobs-more")
    expect(more).to_be_visible()
    with page.expect_request(lambda r: "/v1/jobs?" in r.url and "cursor=" in r.url) as req:
        more.click()
    assert first["next_cursor"] in req.value.url
    expect(rows).to_have_count(60)
    expect(more).to_be_hidden()
    expect(page.locator("#jobs-note")).to_have_text("60 jobs")
    shown = [rows.nth(i).get_attribute("data-job") for i in range(60)]
    assert shown == newest_first  # each job once, newest first, the second page appended


def test_jobs_list_keeps_at_most_1000_rows_then_shows_older_windows(
    server_factory: Any,
    page: Any,  # noqa: F811
) -> None:
    """The DOM cap, with the jobs API answered by a stand-in of 1,200 jobs (the real endpoint's
    paging is tested above and in tests/integration/test_api.py)."""
    import json
    from urllib.parse import parse_qs, urlparse

    from playwright.sync_api import expect

    server = server_factory([JOBS], HERALD_API_KEY=KEY)
    server.start()
    total = 1200
    jobs = [
        {
            "id": f"job-{i:04d}",
            "name": "square",
            "status": "succeeded",
            "attempt": 1,
            "max_attempts": 3,
            "progress": None,
            "created_at": "2026-11-23T12:00:00+00:00",
        }
        for i in range(total)
    ]
    asked: list[dict[str, list[str]]] = []

    def jobs_api(route: Any) -> None:
        q = parse_qs(urlparse(route.request.url).query)
        asked.append(q)
        start = int(q.get("cursor", ["0"])[0])
        limit = int(q["limit"][0])
        end = min(start + limit, total)
        body = {"data": jobs[start:end], "next_cursor": str(end) if end < total else None}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    login(page, server)  # waits for the overview: a navigation before the cookie is set would race
    page.route(lambda url: urlparse(url).path == "/v1/jobs", jobs_api)
    page.goto(server.url + "/#/jobs")
    rows = page.locator("#jobs tr[data-job]")
    more = page.locator("#jobs-more")
    expect(rows).to_have_count(50)
    for n in range(100, 1001, 50):
        more.click()
        expect(rows).to_have_count(n)
    assert page.locator("#jobs-newest").is_hidden()
    # one more page would pass 1,000 rows: the list moves on to a window of older jobs
    more.click()
    expect(rows.first).to_have_attribute("data-job", "job-1000")
    expect(rows).to_have_count(50)
    expect(page.locator("#jobs-note")).to_contain_text("at most 1000")
    newest = page.locator("#jobs-newest")
    expect(newest).to_be_visible()
    assert all("offset" not in q for q in asked)  # cursors only
    newest.click()
    expect(rows.first).to_have_attribute("data-job", "job-0000")
    expect(rows).to_have_count(50)
    expect(newest).to_be_hidden()


def test_model_page_pages_versions_and_shows_every_alias(
    server_factory: Any,
    page: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A model with 60 versions: the page shows the newest 50, "load more" appends the rest by
    cursor, and the head names an alias that points at a version not on the first page."""
    from playwright.sync_api import expect

    from .test_dashboard import wait_until

    server = server_factory([], HERALD_API_KEY=KEY)
    server.start()
    with server.client() as api:
        for i in range(1, 61):
            data = {
                "name": "many",
                "artifact_uri": (tmp_path / "models" / "many" / str(i)).as_uri(),
            }
            r = api.post("/v1/messages", json={"type": "model.register", "data": data})
            assert r.is_success, r.text
        wait_until(lambda: api.get("/v1/registry/models/many/versions/60").is_success, 120)
        r = api.post("/v1/registry/models/many/versions/1/promote", json={"alias": "champion"})
        assert r.status_code == 202, r.text
        wait_until(lambda: api.get("/v1/registry/models/many").json()["aliases"] == {"champion": 1})
        head = api.get("/v1/registry/models/many", params={"versions_limit": 50}).json()
    assert [v["version"] for v in head["versions"]] == list(range(60, 10, -1))
    assert head["versions_next_cursor"] and head["latest_version"] == 60

    login(page, server)
    page.goto(server.url + "/#/registry/many")
    rows = page.locator("#versions tr[data-version]")
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-version", "60")
    expect(page.locator("#compare-box")).to_contain_text("Compare versions")
    expect(page.locator("h2 + p .pill").first).to_have_text("champion → v1")
    page.locator("#versions-more").click()
    expect(rows).to_have_count(60)
    expect(rows.last).to_have_attribute("data-version", "1")
    expect(rows.last).to_contain_text("champion")
    expect(page.locator("#versions-more")).to_be_hidden()
    expect(page.locator("#versions-note")).to_have_text("60 versions")
