"""Guardrails over HTTP with the official client: PII split across streamed deltas is still
redacted, input rules block with content_policy_violation, triggers are counted and reported;
client keys: scopes and rate limits; request logs with cost."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn
from fastapi import FastAPI

from herald.api import create_app
from herald.bootstrap import Herald
from herald.bus import EventQuery
from herald.serving.requestlog import read_request_log
from herald.settings import Settings

KEY = "k-guard"
REPLY = "call me at 555 123 4567 or mail john.doe@example.com card 4111 1111 1111 1111 thanks"
RULES = [
    {"name": "pii", "type": "pii", "action": "redact"},
    {"name": "secrets", "type": "terms", "terms": ["project zeus"], "direction": "input"},
    {"name": "tokens", "type": "max_tokens", "limit": 50},
]


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Herald, str]]:
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        serving={
            "bundled": False,
            "registry": False,
            "models": {"fake": {"backend": "fake", "model": "f", "options": {"reply": REPLY}}},
            "guardrails": RULES,
            "guardrail_events_interval_s": 0.1,
            "request_log": {"prices": {"fake": {"prompt": 1.0, "completion": 2.0}}},
        },
    )
    h = Herald(settings)
    app = create_app(h, KEY, manage_lifecycle=False)
    await h.start()
    async with serve(app) as url:
        yield h, url
    await h.stop()


async def test_pii_split_over_stream_deltas_is_redacted(env: tuple[Herald, str]) -> None:
    h, url = env
    async with openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0) as c:
        stream = await c.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        pieces = [x.choices[0].delta.content or "" async for x in stream if x.choices]
        text = "".join(pieces)
        assert "555" not in text and "4111" not in text and "john.doe" not in text
        assert "[PHONE]" in text and "[EMAIL]" in text and "[CREDIT_CARD]" in text
        assert text.endswith("thanks")
        full = await c.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "my mail is a.b@example.org"}]
        )
        assert full.choices[0].message.content == text
        with pytest.raises(openai.BadRequestError) as info:
            await c.chat.completions.create(
                model="fake", messages=[{"role": "user", "content": "tell me about Project Zeus"}]
            )
        assert info.value.code == "content_policy_violation"
        assert "secrets" in str(info.value) and "Zeus" not in str(info.value)
        with pytest.raises(openai.BadRequestError) as info:
            await c.chat.completions.create(
                model="fake", messages=[{"role": "user", "content": "x"}], max_tokens=500
            )
        assert info.value.code == "max_tokens_exceeded"
    for _ in range(200):
        events = await h.log.query(EventQuery(types=["guardrail.triggered"], limit=100))
        if {e.data["rule"] for e in events} >= {"pii", "secrets", "tokens"}:
            break
        await asyncio.sleep(0.05)
    by_rule = {(e.data["rule"], e.data["direction"]) for e in events}
    assert ("pii", "output") in by_rule and ("pii", "input") in by_rule
    metrics = h.metrics.render()
    metrics = metrics.decode() if isinstance(metrics, bytes) else metrics
    assert 'herald_guardrail_triggers_total{action="redact",direction="output"' in metrics
    assert "herald_request_cost_usd_total" in metrics
    # request logs: redacted text and a cost estimate
    h.request_log.close()
    lines = list(read_request_log(h.settings.home / "serving" / "requests"))
    served = [x for x in lines if x["status"] == 200]
    assert served and all(
        "example" not in (x.get("input", "") + str(x.get("output"))) for x in served
    )
    assert served[0]["cost_usd"] > 0
    assert any(x["status"] == 400 for x in lines)


async def test_client_keys_scopes_and_rate_limits(env: tuple[Herald, str]) -> None:
    h, url = env
    admin = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/v1/keys", json={"name": "app", "rate_per_minute": 60}, headers=admin)
        assert r.status_code == 201
        key = r.json()["key"]
        client = {"Authorization": f"Bearer {key}"}
        body = {"model": "fake", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}
        codes = [
            (await http.post("/v1/chat/completions", json=body, headers=client)).status_code
            for _ in range(12)
        ]
        assert codes[:10] == [200] * 10  # burst of rate/6
        limited = await http.post("/v1/chat/completions", json=body, headers=client)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        denied = await http.get("/v1/deployments", headers=client)
        assert denied.status_code == 403 and "admin" in denied.json()["error"]["message"]
        assert (await http.get("/v1/keys", headers=client)).status_code == 403
        assert (await http.get("/v1/keys", headers=admin)).json()["data"][0]["name"] == "app"
        assert "hash" not in str((await http.get("/v1/keys", headers=admin)).json())
        kid = r.json()["id"]
        assert (await http.delete(f"/v1/keys/{kid}", headers=admin)).status_code == 200
        h.keys._cache.clear()
        assert (await http.get("/v1/models", headers=client)).status_code == 401
