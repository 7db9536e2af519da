"""The dashboard's read APIs: serving charts from the request log and the alerts feed."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from herald.api import create_app
from herald.api.routes.dashboard import serving_metrics

from .conftest import Env

KEY = "dash-api-key"


@pytest.fixture
async def api(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    h = await env.start()
    app = create_app(h, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield c


def rec(t: float, model: str, latency: float, ttft: float, tokens: int, **kw: object) -> str:
    line = {
        "time": t,
        "request_id": f"r{t}",
        "model": model,
        "version": f"models:/{model}/1",
        "status": 200,
        "latency_s": latency,
        "ttft_s": ttft,
        "prompt_tokens": 5,
        "completion_tokens": tokens,
        "cost_usd": 0.001,
        **kw,
    }
    return json.dumps(line) + "\n"


def test_serving_metrics_buckets_percentiles_and_rates(tmp_path: Path) -> None:
    now = 10_000.0
    folder = tmp_path / "requests"
    folder.mkdir()
    lines = [
        rec(now - 7200, "chat", 9.0, 1.0, 10),  # outside the hour: left out
        rec(now - 3000, "chat", 1.0, 0.5, 10),
        rec(now - 2990, "chat", 3.0, 0.5, 10, status=500),
        rec(now - 10, "chat", 2.0, 1.0, 20),
        rec(now - 5, "other", 0.5, 0.1, 4),
    ]
    (folder / "requests.jsonl").write_text("".join(lines) + "{not json\n")
    out = serving_metrics(folder, minutes=60, buckets=6, model=None, now=now)
    chat = out["models"]["chat"]
    assert chat["requests"] == 3
    assert chat["errors"] == 1
    assert chat["latency_p50_s"] == 2.0
    assert chat["latency_p95_s"] == pytest.approx(2.9)
    assert chat["ttft_p50_s"] == 0.5
    # 40 tokens over (0.5 + 2.5 + 1.0) s of generation after the first token
    assert chat["tokens_per_s"] == pytest.approx(10.0)
    assert chat["cost_usd"] == pytest.approx(0.003)
    assert [b["requests"] for b in chat["series"]] == [2, 1]
    assert chat["series"][0]["t"] == now - 3600 + 600  # the second 10-minute bucket
    assert out["models"]["other"]["requests"] == 1
    only = serving_metrics(folder, minutes=60, buckets=6, model="other", now=now)
    assert list(only["models"]) == ["other"]


async def test_serving_endpoint_reads_the_request_log(api: httpx.AsyncClient, env: Env) -> None:
    assert env.herald is not None
    sink = env.herald.request_log.sink  # files embedded, the herald_requests table on PostgreSQL
    sink.write(json.loads(rec(time.time() - 1, "demo", 0.2, 0.05, 8)))
    assert sink.flush()
    r = await api.get("/v1/dashboard/serving", params={"minutes": 5})
    assert r.status_code == 200, r.text
    assert r.json()["models"]["demo"]["requests"] == 1
    r = await api.get("/v1/dashboard/serving", params={"minutes": 0})
    assert r.status_code == 422
    assert "minutes" in r.text


async def test_alerts_newest_first_and_only_alert_types(api: httpx.AsyncClient) -> None:
    alerts = [
        {"type": "approval.requested", "data": {"reason": "r", "action_type": "x", "action": {}}},
        {
            "type": "deployment.rolledback",
            "data": {"name": "d", "revision": 3, "restored_revision": 1, "targets": []},
        },
    ]
    for body in alerts:
        r = await api.post("/v1/messages", json=body)
        assert r.status_code == 202, r.text
    r = await api.get("/v1/dashboard/alerts", params={"limit": 10})
    assert r.status_code == 200, r.text
    got = [e["type"] for e in r.json()["data"]]
    assert got == ["deployment.rolledback", "approval.requested"]
    unauth = await api.get("/v1/dashboard/alerts", headers={"Authorization": ""})
    assert unauth.status_code == 401


async def test_suites_lists_home_suites_first_then_shipped(
    api: httpx.AsyncClient, env: Env
) -> None:
    assert env.herald is not None
    own = env.herald.settings.home / "evaluations" / "suites"
    own.mkdir(parents=True)
    (own / "tiny.yaml").write_text("name: tiny\n")
    (own / "mine.yaml").write_text("name: mine\n")
    r = await api.get("/v1/dashboard/suites")
    assert r.status_code == 200, r.text
    by_name = {s["name"]: s["folder"] for s in r.json()["data"]}
    assert by_name["mine"] == str(own)
    assert by_name["tiny"] == str(own)  # the home folder shadows the shipped suite
    assert "factual-qa" in by_name  # shipped in examples/eval
