"""Data-plane fairness through the HTTP API (in process): the body limit holds for chunked
bodies, prompts are measured in characters before anything tokenizes them (and tokenization
runs off the event loop), and each client key gets a bounded number of requests in flight."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from herald.api import create_app
from herald.bootstrap import Herald
from herald.serving.backends import register_backend
from herald.serving.backends.base import ChatPrompt, Delta, Embeddings, GenerationRequest
from herald.serving.backends.fake import FakeBackend
from herald.settings import Settings

ADMIN_KEY = "test-admin-key-0123456789abcdef"
BODY_LIMIT = 8192
PROMPT_LIMIT = 1000


class Recording(FakeBackend):
    """A fake backend that records which thread rendered or tokenized what, and whose
    generations wait for :attr:`release` (so tests control how long requests stay in flight)."""

    name = "recording"
    calls: ClassVar[list[tuple[str, int]]] = []  # (method, thread id)
    release: ClassVar[asyncio.Event | None] = None
    started_event: ClassVar[asyncio.Event | None] = None

    def chat_prompt(self, messages: list[dict[str, Any]]) -> ChatPrompt:
        self.calls.append(("chat_prompt", threading.get_ident()))
        return super().chat_prompt(messages)

    def tokenize(self, text: str) -> list[int]:
        self.calls.append(("tokenize", threading.get_ident()))
        return super().tokenize(text)

    async def embed(self, inputs: Any) -> Embeddings:
        self.calls.append(("embed", threading.get_ident()))
        return await super().embed(inputs)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self.calls.append(("generate", threading.get_ident()))
        if self.started_event is not None:
            self.started_event.set()
        if self.release is not None:
            await self.release.wait()
        async for d in super().generate(request):
            yield d


register_backend("recording", f"{__name__}:Recording")


@pytest.fixture(autouse=True)
def _reset_recording() -> None:
    Recording.calls = []
    Recording.release = None
    Recording.started_event = None


@pytest.fixture
async def herald(tmp_path: Path) -> AsyncIterator[Herald]:
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        api={"max_body_bytes": BODY_LIMIT},
        serving={
            "models": {
                "m": {"backend": "recording", "model": "r", "options": {"reply": "ok then"}},
            },
            "bundled": False,
            "registry": False,
            "max_queue": 64,
        },
        security={
            "limits": {
                "max_prompt_chars": PROMPT_LIMIT,
                "max_concurrent_per_key": 1,
                "max_queued_per_key": 1,
                "queue_timeout_s": 30,
            }
        },
    )
    h = Herald(settings)
    yield h
    await h.serving.close()
    h.registry.close()
    h.keys.close()


@pytest.fixture
async def app_client(herald: Herald) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    app = create_app(herald, ADMIN_KEY, manage_lifecycle=False)
    opened: list[httpx.AsyncClient] = []

    def client(key: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://herald",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        opened.append(c)
        return c

    yield client
    for c in opened:
        await c.aclose()


@pytest.fixture
async def admin(app_client: Callable[[str], httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client(ADMIN_KEY)


async def new_key(admin: httpx.AsyncClient, scopes: list[str] | None = None) -> str:
    """A client key, created the way an operator does (``POST /v1/keys``)."""
    r = await admin.post("/v1/keys", json={"name": "team", "scopes": scopes or ["inference"]})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


@pytest.fixture
async def user(
    admin: httpx.AsyncClient, app_client: Callable[[str], httpx.AsyncClient]
) -> httpx.AsyncClient:
    return app_client(await new_key(admin))


def chunked(body: bytes, size: int = 1024) -> Callable[[], AsyncIterator[bytes]]:
    """A request body without Content-Length (``Transfer-Encoding: chunked`` on the wire)."""

    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(body), size):
            yield body[i : i + size]

    return gen


def chat_body(chars: int) -> bytes:
    return json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "a" * chars}]}
    ).encode()


async def metric(admin: httpx.AsyncClient, name: str, **labels: str) -> float:
    text = (await admin.get("/metrics")).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return 0.0


# -- body size: declared and chunked ---------------------------------------------------------

BODY_CASES = [  # (path, who, body, framing)
    ("/v1/chat/completions", "user", chat_body(BODY_LIMIT * 4), "chunked"),
    ("/v1/chat/completions", "user", chat_body(BODY_LIMIT * 4), "one-chunk"),
    ("/v1/chat/completions", "user", chat_body(BODY_LIMIT * 4), "content-length"),
    (
        "/v1/completions",
        "user",
        json.dumps({"model": "m", "prompt": "x" * 50_000}).encode(),
        "chunked",
    ),
    (
        "/v1/embeddings",
        "user",
        json.dumps({"model": "m", "input": ["y" * 9000]}).encode(),
        "chunked",
    ),
    (
        "/v1/messages",
        "admin",
        json.dumps({"type": "t", "data": {"x": "z" * 20_000}}).encode(),
        "chunked",
    ),
    ("/v1/chat/completions", "admin", chat_body(BODY_LIMIT + 1), "chunked"),
]


@pytest.mark.parametrize(("path", "who", "body", "framing"), BODY_CASES)
async def test_body_over_the_limit_is_refused_with_413_however_it_is_framed(
    admin: httpx.AsyncClient,
    user: httpx.AsyncClient,
    path: str,
    who: str,
    body: bytes,
    framing: str,
) -> None:
    client = admin if who == "admin" else user
    headers = {"Content-Type": "application/json"}
    if framing == "chunked":
        r = await client.post(path, content=chunked(body)(), headers=headers)
    elif framing == "one-chunk":
        r = await client.post(path, content=chunked(body, len(body))(), headers=headers)
    else:
        r = await client.post(path, content=body, headers=headers)
        assert r.request.headers["content-length"] == str(len(body))
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert err["code"] == "payload_too_large"
    assert f"{BODY_LIMIT} bytes" in err["message"] and "max_body_bytes" in err["message"]
    assert Recording.calls == []  # nothing rendered, tokenized or generated
    kid = "admin" if who == "admin" else _key_id(client)
    assert await metric(admin, "herald_limit_refusals_total", reason="body_too_large", key=kid) == 1


def _key_id(client: httpx.AsyncClient) -> str:
    return client.headers["Authorization"].removeprefix("Bearer hk_c_").split("_", 1)[0]


async def test_chunked_body_under_the_limit_is_served(user: httpx.AsyncClient) -> None:
    body = json.dumps({"model": "m", "input": ["a" * 900] * 8}).encode()
    assert BODY_LIMIT // 2 < len(body) < BODY_LIMIT
    r = await user.post(
        "/v1/embeddings", content=chunked(body, 100)(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == 8


async def test_unauthenticated_chunked_body_gets_401_not_413(
    app_client: Callable[[str], httpx.AsyncClient],
) -> None:
    stranger = app_client("wrong-key")
    r = await stranger.post("/v1/chat/completions", content=chunked(chat_body(BODY_LIMIT * 4))())
    assert r.status_code == 401


# -- prompt size before tokenization ----------------------------------------------------------

LONG = "w " * (PROMPT_LIMIT // 2) + "w"  # PROMPT_LIMIT + 1 characters

PROMPT_CASES = [  # (path, body, param)
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": LONG}]}, "messages"),
    (
        "/v1/chat/completions",  # the limit is for all messages together
        {
            "messages": [
                {"role": "system", "content": "s" * 600},
                {"role": "user", "content": "u" * 401},
            ]
        },
        "messages",
    ),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": LONG}]}]},
        "messages",
    ),
    ("/v1/completions", {"prompt": LONG}, "prompt"),
    ("/v1/completions", {"prompt": ["short", LONG]}, "prompt[1]"),
    ("/v1/embeddings", {"input": LONG}, "input"),
    ("/v1/embeddings", {"input": ["a", "b", LONG]}, "input[2]"),
]


@pytest.mark.parametrize(("path", "body", "param"), PROMPT_CASES)
async def test_prompt_over_max_prompt_chars_is_refused_before_tokenization(
    admin: httpx.AsyncClient, user: httpx.AsyncClient, path: str, body: dict[str, Any], param: str
) -> None:
    r = await user.post(path, json={"model": "m", **body})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "context_length_exceeded"
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert f"limit of {PROMPT_LIMIT} characters" in err["message"]
    assert "max_prompt_chars" in err["message"]
    assert Recording.calls == []  # never rendered, tokenized, embedded or generated
    assert (
        await metric(admin, "herald_limit_refusals_total", reason="prompt_too_long", key="-") == 1
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a" * PROMPT_LIMIT}]}),
        ("/v1/completions", {"prompt": ["b" * PROMPT_LIMIT, "c" * PROMPT_LIMIT]}),
        ("/v1/embeddings", {"input": ["d" * PROMPT_LIMIT, "e" * PROMPT_LIMIT]}),
    ],
)
async def test_prompt_at_the_limit_is_served(
    user: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    r = await user.post(path, json={"model": "m", "max_tokens": 2, **body})
    assert r.status_code == 200, r.text


async def test_chat_template_rendering_runs_off_the_event_loop(user: httpx.AsyncClient) -> None:
    loop_thread = threading.get_ident()
    r = await user.post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert r.status_code == 200, r.text
    rendered = [t for name, t in Recording.calls if name == "chat_prompt"]
    assert rendered and all(t != loop_thread for t in rendered)


# -- per-key concurrency ----------------------------------------------------------------------


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(2000):
        if await check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


def chat(client: httpx.AsyncClient, **extra: Any) -> asyncio.Task[httpx.Response]:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    return asyncio.ensure_future(client.post("/v1/chat/completions", json=body))


async def test_per_key_concurrency_queues_then_refuses_with_429(
    admin: httpx.AsyncClient,
    app_client: Callable[[str], httpx.AsyncClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    Recording.release = asyncio.Event()
    key = await new_key(admin)
    kid = key.removeprefix("hk_c_").split("_", 1)[0]
    client = app_client(key)
    first = chat(client)  # runs (1 slot)
    await until(lambda: _gauge(admin, "herald_key_requests_running", kid, 1))
    second = chat(client)  # waits (1 queued)
    await until(lambda: _gauge(admin, "herald_key_requests_waiting", kid, 1))
    with caplog.at_level(logging.WARNING, logger="herald.security"):
        third = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )
    assert third.status_code == 429, third.text
    assert int(third.headers["Retry-After"]) >= 1
    err = third.json()["error"]
    assert err["code"] == "concurrency_limit_exceeded" and err["type"] == "rate_limit_error"
    assert "max_concurrent_per_key" in err["message"]
    assert any(kid in r.getMessage() and "concurrency" in r.getMessage() for r in caplog.records)
    assert (
        await metric(admin, "herald_limit_refusals_total", reason="key_concurrency", key=kid) == 1
    )

    # other keys and the admin key are not held up by this key's queue
    other = app_client(await new_key(admin))
    Recording.release.set()  # let every generation finish from now on
    assert (await other.get("/v1/models")).status_code == 200
    assert (await admin.get("/v1/models")).status_code == 200
    assert (await first).status_code == 200
    assert (await second).status_code == 200  # the queued one was served, not refused
    assert (await client.get("/v1/models")).status_code == 200  # slots were given back
    assert await _gauge(admin, "herald_key_requests_running", kid, 0)


async def _gauge(admin: httpx.AsyncClient, name: str, kid: str, value: float) -> bool:
    return await metric(admin, name, key=kid) == value


async def test_admin_key_is_not_limited_per_key(admin: httpx.AsyncClient) -> None:
    Recording.release = asyncio.Event()
    Recording.started_event = asyncio.Event()
    held = [chat(admin) for _ in range(4)]  # more than max_concurrent + max_queued
    await until(lambda: _generations(4))
    Recording.release.set()
    assert [(await t).status_code for t in held] == [200] * 4


async def _generations(n: int) -> bool:
    return sum(1 for name, _ in Recording.calls if name == "generate") >= n


async def test_a_stream_holds_its_slot_until_it_ends(
    admin: httpx.AsyncClient, app_client: Callable[[str], httpx.AsyncClient]
) -> None:
    Recording.release = asyncio.Event()
    key = await new_key(admin)
    kid = key.removeprefix("hk_c_").split("_", 1)[0]
    client = app_client(key)
    stream = chat(client, stream=True)
    await until(lambda: _generations(1))  # the stream's generation started
    queued = chat(client)
    await until(lambda: _gauge(admin, "herald_key_requests_waiting", kid, 1))
    assert not queued.done()  # waits while the stream is open
    Recording.release.set()
    r = await stream
    assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
    assert (await queued).status_code == 200


async def test_queued_request_gives_up_after_queue_timeout_with_429(
    herald: Herald, admin: httpx.AsyncClient, app_client: Callable[[str], httpx.AsyncClient]
) -> None:
    herald.settings.security.limits.queue_timeout_s = 0.05
    app = create_app(herald, ADMIN_KEY, manage_lifecycle=False)  # built with the short timeout
    key = await new_key(admin)
    Recording.release = asyncio.Event()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://herald",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        first = chat(client)
        await until(lambda: _generations(1))
        r = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "q"}]},
        )
        assert r.status_code == 429, r.text
        assert "waited" in r.json()["error"]["message"]
        Recording.release.set()
        assert (await first).status_code == 200
