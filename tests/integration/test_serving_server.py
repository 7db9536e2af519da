"""The data plane on a real uvicorn server (in this event loop) through the official client:
streaming, client disconnect cancels the generation, overload, crashes mid-stream, proxying."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from fastapi import FastAPI

from herald.api import create_app
from herald.bootstrap import Herald
from herald.serving.backends.fake import FakeBackend
from herald.settings import Settings

KEY = "k-serving"
CHAT: list[Any] = [{"role": "user", "content": "hello"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def make_herald(tmp_path: Path, models: dict[str, Any], **serving: Any) -> Herald:
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        serving={"models": models, "bundled": False, "registry": False, **serving},
    )
    return Herald(settings)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Herald, str]]:
    h = make_herald(
        tmp_path,
        {
            "slow": {"backend": "fake", "model": "s", "options": {"delay_s": 0.02}},
            "crashy": {"backend": "fake", "model": "c", "options": {"fail_after": 2}},
            "fake": {"backend": "fake", "model": "f"},
        },
    )
    async with serve(create_app(h, KEY, manage_lifecycle=False)) as url:
        yield h, url
    await h.serving.close()
    h.registry.close()


def client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)


async def backend_of(h: Herald, name: str) -> FakeBackend:
    b = (await h.serving.route(name)).backend
    assert isinstance(b, FakeBackend)
    return b


async def test_stream_with_usage_over_http(server: tuple[Herald, str]) -> None:
    _, url = server
    async with client(url) as c:
        stream = await c.chat.completions.create(
            model="fake",
            messages=CHAT,
            max_tokens=5,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [x async for x in stream]
    text = "".join(x.choices[0].delta.content or "" for x in chunks if x.choices)
    assert text == " the quick brown fox jumps"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5


async def test_client_disconnect_cancels_generation(server: tuple[Herald, str]) -> None:
    h, url = server
    backend = await backend_of(h, "slow")
    body = {"model": "slow", "messages": CHAT, "max_tokens": 2000, "stream": True}
    async with (
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as r,
    ):
        assert r.status_code == 200
        seen = 0
        async for line in r.aiter_lines():
            seen += line.startswith("data:")
            if seen >= 3:
                break
    # the connection is closed: the server must stop generating long before 2000 tokens
    for _ in range(500):
        if backend.cancelled:
            break
        await asyncio.sleep(0.01)
    assert backend.cancelled == 1
    replica = await h.serving.route("slow")
    assert replica.outstanding == 0


async def test_disconnect_before_the_response_cancels_too(server: tuple[Herald, str]) -> None:
    h, url = server
    backend = await backend_of(h, "slow")
    before, started = backend.cancelled, backend.started
    body = {"model": "slow", "messages": CHAT, "max_tokens": 2000}  # not streamed: ~40 s
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    ) as http:
        request = asyncio.ensure_future(http.post("/v1/chat/completions", json=body))
        # hang up once the generation runs (a request cancelled before it started generating
        # never reaches the backend, which would prove nothing here)
        for _ in range(1000):
            if backend.started > started or request.done():
                break
            await asyncio.sleep(0.01)
        assert backend.started == started + 1 and not request.done()
        request.cancel()  # closes the connection: the server sees http.disconnect
        with pytest.raises(asyncio.CancelledError):
            await request
    for _ in range(500):
        if backend.cancelled > before:
            break
        await asyncio.sleep(0.01)
    assert backend.cancelled == before + 1
    assert (await h.serving.route("slow")).outstanding == 0


async def test_backend_crash_mid_stream_ends_with_error_event(server: tuple[Herald, str]) -> None:
    _, url = server
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        r = await http.post(
            "/v1/chat/completions",
            json={"model": "crashy", "messages": CHAT, "max_tokens": 10, "stream": True},
        )
        events = [e for e in r.text.split("\n\n") if e]
        assert '"error"' in events[-2] and "crashed mid-stream" in events[-2]
        assert events[-1] == "data: [DONE]"
        # non-streamed: a 500 OpenAI error; other models are unaffected
        r = await http.post(
            "/v1/chat/completions", json={"model": "crashy", "messages": CHAT, "max_tokens": 10}
        )
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "backend_error"
    async with client(url) as c:
        ok = await c.chat.completions.create(model="fake", messages=CHAT, max_tokens=2)
    assert ok.choices[0].message.content == " the quick"


async def test_overload_is_429_with_retry_after(tmp_path: Path) -> None:
    h = make_herald(
        tmp_path,
        {
            "one": {
                "backend": "fake",
                "model": "o",
                "options": {"delay_s": 0.05, "max_concurrency": 1},
            }
        },
        max_queue=0,
    )
    async with (
        serve(create_app(h, KEY, manage_lifecycle=False)) as url,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http,
    ):
        body = {"model": "one", "messages": CHAT, "max_tokens": 200, "stream": True}
        async with http.stream("POST", "/v1/chat/completions", json=body) as first:
            assert first.status_code == 200
            r = await http.post(
                "/v1/chat/completions", json={"model": "one", "messages": CHAT, "max_tokens": 1}
            )
            assert r.status_code == 429
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"]["type"] == "rate_limit_error"
    await h.serving.close()
    h.registry.close()


async def test_openai_proxy_backend_relays_an_upstream(
    server: tuple[Herald, str], tmp_path: Path
) -> None:
    _, upstream = server
    h = make_herald(
        tmp_path / "proxy",
        {
            "remote": {
                "backend": "openai",
                "model": "fake",
                "options": {"base_url": f"{upstream}/v1", "api_key": KEY},
            },
            "remote-missing": {
                "backend": "openai",
                "model": "nope",
                "options": {"base_url": f"{upstream}/v1", "api_key": KEY},
            },
        },
    )
    async with serve(create_app(h, "proxy-key", manage_lifecycle=False)) as url:
        c = openai.AsyncOpenAI(api_key="proxy-key", base_url=f"{url}/v1", max_retries=0)
        r = await c.chat.completions.create(model="remote", messages=CHAT, max_tokens=3)
        assert r.choices[0].message.content == " the quick brown"
        assert r.usage is not None and r.usage.completion_tokens == 3
        stream = await c.chat.completions.create(
            model="remote", messages=CHAT, max_tokens=2, stream=True
        )
        assert "".join([x.choices[0].delta.content or "" async for x in stream]) == " the quick"
        comp = await c.completions.create(
            model="remote", prompt="a b", echo=True, max_tokens=0, logprobs=1
        )
        assert comp.choices[0].logprobs is not None
        assert comp.choices[0].logprobs.tokens == ["a", " b"]
        emb = await c.embeddings.create(model="remote", input="x y")
        assert len(emb.data[0].embedding) == 8
        with pytest.raises(openai.NotFoundError):
            await c.chat.completions.create(model="remote-missing", messages=CHAT)
        await c.close()
    await h.serving.close()
    h.registry.close()


async def test_request_timeout(tmp_path: Path) -> None:
    h = make_herald(
        tmp_path,
        {"slow": {"backend": "fake", "model": "s", "options": {"delay_s": 0.05}}},
        request_timeout_s=0.3,
    )
    async with (
        serve(create_app(h, KEY, manage_lifecycle=False)) as url,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http,
    ):
        body: dict[str, Any] = {"model": "slow", "messages": CHAT, "max_tokens": 500}
        r = await http.post("/v1/chat/completions", json=body)
        assert r.status_code == 504
        assert "request timeout" in r.json()["error"]["message"]
        r = await http.post("/v1/chat/completions", json={**body, "stream": True})
        events = [e for e in r.text.split("\n\n") if e]
        assert '"code": "timeout"' in events[-2]
        assert events[-1] == "data: [DONE]"
        ok = await http.post("/v1/chat/completions", json={**body, "max_tokens": 2})
        assert ok.status_code == 200
    backend = await backend_of(h, "slow")
    assert backend.cancelled == 2
    await h.serving.close()
    h.registry.close()
