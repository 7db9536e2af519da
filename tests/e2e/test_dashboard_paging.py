"""The dashboard's jobs list in a real headless Chromium: the first page, then "load more"
fetches the next page by cursor and appends it (no limit doubling, no repeated rows)."""

from __future__ import annotations

from typing import Any

import pytest

from .test_cli_server import ROOT
from .test_dashboard import page  # noqa: F401  (the Chromium fixture)

JOBS = str(ROOT / "tests" / "integration" / "jobs_plugin.py")
KEY = "hk_dashboard_paging_key"

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

    page.goto(server.url + "/login")
    page.fill("input[name=api_key]", KEY)
    page.click("button[type=submit]")
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
