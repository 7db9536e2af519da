"""The headline hostile values against a real `herald up`: each is a 4xx in Herald's error
format, nothing is stored, the server answers on, logs no traceback, and counts the refusal."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow

KEY = "e2e-hostile-edge-admin-key-0123456789abcdef"


def test_hostile_values_fail_safely_against_herald_up(server_factory: Any) -> None:
    srv = server_factory([], HERALD_API_KEY=KEY)
    srv.start(timeout=60)
    with srv.client() as c:
        json_headers = {"Content-Type": "application/json"}
        attacks = [
            ('{"type": "job.requested", "data": {"name": "x", "params": {"v": NaN}}}', 422),
            ('{"type": "job.requested", "data": {"name": "x", "params": {"v": 1e400}}}', 422),
            ('{"type": "job.requested", "data": {"name": "x\\ud800"}}', 422),
            ('{"type": "job.requested", "data": ' + "[" * 5000 + "]" * 5000 + "}", 422),
        ]
        for body, status in attacks:
            r = c.post("/v1/messages", content=body.encode(), headers=json_headers)
            assert r.status_code == status, (body[:80], r.status_code, r.text[:300])
            assert set(r.json()["error"]) >= {"message", "type", "code"}
        r = c.get("/v1/messages", params={"after": str(2**63)})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        r = c.post("/v1/prompts", json={"name": "evil", "template": "{% include 'x' %}"})
        assert r.status_code == 400, r.text
        r = c.post("/v1/prompts", json={"name": "big", "template": '{{ "a"*10**9 }}'})
        assert r.status_code == 201, r.text
        r = c.post("/v1/prompts/render", json={"ref": "big"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "prompt_render_error"
        r = c.delete("/v1/messages")
        assert r.status_code == 405 and "POST" in r.headers["allow"]

        assert c.get("/healthz").status_code == 200
        stored = c.get("/v1/messages", params={"type": "job.requested"}).json()["data"]
        assert stored == []
        metrics = c.get("/metrics").text
        assert 'herald_requests_refused_total{reason="non_finite_number"} 2.0' in metrics
        assert 'herald_requests_refused_total{reason="json_too_deep"} 1.0' in metrics
    srv.stop()
    log = srv.log.read_text(errors="replace")
    assert "Traceback" not in log
    assert "refused POST /v1/messages: non_finite_number" in log
