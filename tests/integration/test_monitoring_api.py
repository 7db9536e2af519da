"""REST: /v1/feedback (stored, 422 on malformed), /v1/monitors, /v1/approvals grant/deny."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from herald.api import create_app
from herald.monitoring import sensors as monitoring
from herald.monitoring.messages import ApprovalRequested, MonitorsEvaluated

from .conftest import Env

KEY = "test-key-monitoring"


@pytest.fixture
async def api(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    monitoring.install(env.sensors, cron=False)
    h = await env.start()
    app = create_app(h, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield c


async def test_feedback_is_stored_and_announced(api: httpx.AsyncClient, env: Env) -> None:
    r = await api.post("/v1/feedback", json={"response_id": "chatcmpl-1", "thumbs": "down"})
    assert r.status_code == 201, r.text
    assert r.json()["score"] == 0.0
    r = await api.post("/v1/feedback", json={"response_id": "chatcmpl-2", "score": 0.75})
    assert r.status_code == 201
    assert env.herald is not None
    scores = env.herald.services.monitoring.scores_by_response()
    assert scores == {"chatcmpl-1": 0.0, "chatcmpl-2": 0.75}
    [ev] = await env.wait_for("feedback.recorded", where=lambda e: e.data["score"] == 0.75)
    assert ev.subject == "responses/chatcmpl-2"


@pytest.mark.parametrize(
    "body",
    [
        {"response_id": "x"},  # neither thumbs nor score
        {"response_id": "x", "score": 1.5},
        {"response_id": "x", "thumbs": "sideways"},
        {"response_id": "", "thumbs": "up"},
        {"response_id": "../etc", "thumbs": "up"},
        {"response_id": "x", "thumbs": "up", "extra": 1},
    ],
)
async def test_malformed_feedback_is_422(api: httpx.AsyncClient, body: dict[str, object]) -> None:
    r = await api.post("/v1/feedback", json=body)
    assert r.status_code == 422, r.text
    assert "error" in r.json()


async def test_monitors_list_and_evaluate(api: httpx.AsyncClient, env: Env) -> None:
    r = await api.get("/v1/monitors")
    assert r.status_code == 200
    names = {rule["name"] for rule in r.json()["data"]}
    assert "prompt-drift" in names
    assert r.json()["outcomes"] == [] and r.json()["evaluated"] is None
    r = await api.post("/v1/monitors/evaluate", json={"rules": ["error-rate"]})
    assert r.status_code == 202
    await env.wait_for("monitors.evaluate")
    [done] = await env.wait_for("monitors.evaluated")
    r = await api.get("/v1/monitors")
    assert r.json()["evaluated"]["id"] == done.id
    assert r.json()["evaluated"]["trigger"] == "request"
    assert [{k: v for k, v in o.items() if k != "time"} for o in r.json()["outcomes"]] == (
        done.data["outcomes"]
    )


async def test_monitors_show_a_run_made_by_another_process(
    api: httpx.AsyncClient, env: Env
) -> None:
    # a worker (another process) evaluated the rules: its record is in the shared log
    assert env.herald is not None
    outcome = {"rule": "p95", "model": "m", "metric": "latency_p95", "value": 2.5,
               "fired": True, "status": "fired", "emits": "slo.breached"}  # fmt: skip
    sent = await env.herald.emit(
        MonitorsEvaluated(trigger="schedule", rules=1, fired=1, outcomes=[outcome])
    )
    body = (await api.get("/v1/monitors")).json()
    assert body["evaluated"]["id"] == sent.id and body["evaluated"]["trigger"] == "schedule"
    assert [o["rule"] for o in body["outcomes"]] == ["p95"]
    assert body["outcomes"][0]["time"] == sent.time.timestamp()


async def test_approvals_grant_deny_and_conflict(api: httpx.AsyncClient, env: Env) -> None:
    assert env.herald is not None
    req = await env.herald.emit(
        ApprovalRequested(action_type="monitors.evaluate", action={"rules": []}, reason="test")
    )
    pending = (await api.get("/v1/approvals")).json()["data"]
    assert [e["id"] for e in pending] == [req.id]
    r = await api.post(f"/v1/approvals/{req.id}/grant", json={"by": "alice"})
    assert r.status_code == 202, r.text
    [action] = await env.wait_for("monitors.evaluate")
    assert action.correlationid == req.correlationid
    assert (await api.post(f"/v1/approvals/{req.id}/deny")).status_code == 409
    assert (await api.post("/v1/approvals/nope/grant")).status_code == 404
    assert (await api.get("/v1/approvals")).json()["data"] == []
