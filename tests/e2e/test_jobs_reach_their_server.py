"""Jobs of ``herald up`` reach the server on the port it bound (issue 14: a ``deployment:NAME``
evaluation target fell back to port 8700 — on a shared host, someone else's server)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from herald.server import own_url

pytestmark = pytest.mark.slow


def test_a_local_job_of_herald_up_gets_the_url_it_bound(
    server_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HERALD_URL", raising=False)
    server = server_factory(["tests/integration/jobs_plugin.py"])
    server.start()
    with server.client() as c:
        r = c.post("/v1/jobs", json={"name": "whereis_herald", "executor": "local"})
        assert r.status_code in (200, 201, 202), r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 60
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = c.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.3)
        assert job["status"] == "succeeded", job
        assert job["result"] == {"url": server.url}, job["result"]  # not http://127.0.0.1:8700


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9000"),
        ("0.0.0.0", "http://127.0.0.1:9000"),
        ("::", "http://[::1]:9000"),
        ("::1", "http://[::1]:9000"),
        ("herald.internal", "http://herald.internal:9000"),
    ],
)
def test_own_url_reaches_a_wildcard_bind_on_loopback(host: str, url: str) -> None:
    assert own_url(host, 9000) == url
