"""What is evaluated, and the one client every engine talks to.

Every target is reached through the OpenAI wire format, so one code path serves all of them:

=====================  ==============================================================
target                 how it is reached
=====================  ==============================================================
``models:/n@alias``    Herald's serving gateway, started in process on a loopback port,
``models:/n/3``        over a :class:`~herald.serving.ModelPool` bound to the registry
``/path/to/ckpt``      same, the folder served by the transformers backend (a ``.gguf``
                       file by llama.cpp)
``NAME``               same, a model the pool serves by name (bundled, ``serving.models``)
``deployment:NAME``    the running Herald's gateway (``HERALD_URL``), model ``NAME``
``http(s)://…/v1``     any OpenAI-compatible endpoint; ``model`` names the model
=====================  ==============================================================

Endpoint targets obey the egress policy (:mod:`herald.security.egress`): checked when the
evaluation is requested and again on every connection. Their credential is an operator-defined
named secret (``api_key_secret``), sent only to the hosts it was defined for; a ``deployment:``
target is this Herald itself and is reached with its own admin key.

The in-process gateway is a real HTTP server (uvicorn in its own thread and event loop), so the
``lm-eval`` adapter and any other HTTP client can use it too.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from herald.evaluation.errors import ItemError, TargetError, TargetUnreachable

if TYPE_CHECKING:
    from herald.registry import Registry
    from herald.serving.pool import ModelPool, ModelSpec
    from herald.settings import Settings

TargetKind = Literal["registry", "checkpoint", "served", "deployment", "endpoint"]
IN_PROCESS: tuple[TargetKind, ...] = ("registry", "checkpoint", "served")


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target: ``model`` is the name sent in requests."""

    kind: TargetKind
    ref: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    backend: str | None = None
    backend_options: dict[str, Any] = field(default_factory=dict)

    @property
    def model_version(self) -> tuple[str, str | None] | None:
        """(name, alias-or-version) for registry targets."""
        if self.kind != "registry":
            return None
        from herald.registry import parse_model_uri

        ref = parse_model_uri(self.ref)
        return ref.name, (ref.alias or (str(ref.version) if ref.version else None))


def parse_target(
    target: str,
    *,
    model: str | None = None,
    backend: str | None = None,
    backend_options: dict[str, Any] | None = None,
    herald_url: str | None = None,
) -> TargetSpec:
    """Understand a target string (raises :class:`TargetError` with the accepted forms)."""
    t = (target or "").strip()
    if not t:
        raise TargetError(
            "target is empty: give models:/name@alias, a checkpoint folder, "
            "deployment:NAME or an http(s):// endpoint"
        )
    key = None
    opts = dict(backend_options or {})
    if t.startswith(("http://", "https://")):
        base, _, frag = t.partition("#")
        name = model or frag
        if not name:
            raise TargetError(f"endpoint target {t!r} needs a model: pass model= or URL#model")
        return TargetSpec("endpoint", t, name, base.rstrip("/"), key)
    if t.startswith("deployment:"):
        name = t.split(":", 1)[1]
        if not name:
            raise TargetError("deployment target needs a name: deployment:NAME")
        url = (herald_url or os.environ.get("HERALD_URL") or "http://127.0.0.1:8700").rstrip("/")
        return TargetSpec("deployment", t, name, f"{url}/v1", key)
    if t.startswith("models:/"):
        from herald.registry import parse_model_uri

        try:
            parse_model_uri(t)
        except Exception as exc:
            raise TargetError(f"bad registry target {t!r}: {exc}") from None
        return TargetSpec("registry", t, t, None, key, backend, opts)
    path = Path(t[7:] if t.startswith("file://") else t).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_file() and path.suffix != ".gguf":
            raise TargetError(f"checkpoint {path} is a file; give a model folder or a .gguf")
        be = backend or ("llamacpp" if path.suffix == ".gguf" else "transformers")
        return TargetSpec("checkpoint", str(path), model or path.name, None, key, be, opts)
    if "/" in t or t.startswith("."):
        raise TargetError(f"checkpoint folder not found: {t}")
    return TargetSpec("served", t, t, None, key, backend, opts)


def authorize_target(
    spec: TargetSpec, settings: Settings, api_key_secret: str | None = None
) -> TargetSpec:
    """``spec`` checked against the egress policy, with its credential: the named secret
    (only for a host it was defined for), or this Herald's own key for ``deployment:`` targets.
    Raises :class:`~herald.security.egress.EgressDenied` (403) or
    :class:`~herald.security.secrets.SecretUnavailable` (422)."""
    from dataclasses import replace

    from herald.auth import read_api_key
    from herald.security.egress import check_url
    from herald.security.secrets import secret_for

    if spec.kind == "endpoint":
        assert spec.base_url is not None
        check_url(spec.base_url, settings)
        key = secret_for(api_key_secret, spec.base_url, settings) if api_key_secret else None
        return replace(spec, api_key=key)
    if spec.kind == "deployment":
        assert spec.base_url is not None
        if api_key_secret:
            key = secret_for(api_key_secret, spec.base_url, settings)
        else:  # the operator's own server (HERALD_URL): its own admin key
            key = read_api_key(Path(settings.home), settings.api_key)
        return replace(spec, api_key=key)
    return spec


# the client -------------------------------------------------------------------------------
@dataclass
class ChatResult:
    """One chat completion with its timings (``ttft_s`` from the first streamed token)."""

    text: str
    latency_s: float
    ttft_s: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    content_chunks: int | None = None  # stream chunks that carried text (None: not streamed)


class OpenAIClient:
    """A small async client of the OpenAI wire format (chat, completions with logprobs).

    Transient answers (429, 503, connection resets) are retried with backoff; other 4xx answers
    raise :class:`ItemError` (the item is recorded as failed), an endpoint that cannot be reached
    raises :class:`TargetUnreachable`."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.retries = retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def check(self) -> None:
        """Fail early with :class:`TargetUnreachable` when the endpoint does not answer."""
        try:
            r = await self._http.get("/models")
        except httpx.HTTPError as exc:
            raise TargetUnreachable(f"cannot reach {self.base_url}: {exc}") from exc
        if r.status_code in (401, 403):
            raise TargetUnreachable(f"{self.base_url} refused the API key (HTTP {r.status_code})")

    @asynccontextmanager
    async def _stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                async with self._http.stream("POST", path, json=body) as r:
                    if r.status_code in (429, 502, 503) and attempt < self.retries:
                        await r.aread()
                    else:
                        if r.status_code >= 400:
                            await r.aread()
                            raise _http_error(r, self.base_url + path)
                        yield r
                        return
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                if attempt >= self.retries:
                    raise TargetUnreachable(f"cannot reach {self.base_url}: {exc}") from exc
            except httpx.TimeoutException as exc:
                raise ItemError(f"request to {self.base_url}{path} timed out") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self._stream(path, body) as r:
            data = json.loads(await r.aread())
        if not isinstance(data, dict):
            raise ItemError(f"{self.base_url}{path} answered {type(data).__name__}, not an object")
        return data

    async def chat(
        self, messages: list[dict[str, Any]], *, stream: bool = True, **params: Any
    ) -> ChatResult:
        """A chat completion; streamed by default so time to first token is measured."""
        body = {"model": self.model, "messages": messages, **params}
        started = time.perf_counter()
        if not stream:
            data = await self._post("/chat/completions", body)
            try:
                choice = data["choices"][0]
                text = choice["message"].get("content") or ""
            except (KeyError, IndexError, TypeError, AttributeError) as exc:
                raise ItemError(f"malformed chat completion: {exc!r}") from None
            usage = data.get("usage") or {}
            return ChatResult(
                text,
                time.perf_counter() - started,
                None,
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                choice.get("finish_reason"),
            )
        body |= {"stream": True, "stream_options": {"include_usage": True}}
        parts: list[str] = []
        ttft: float | None = None
        usage = {}
        finish: str | None = None
        async with self._stream("/chat/completions", body) as r:
            async for line in r.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except json.JSONDecodeError:
                    raise ItemError(f"malformed stream chunk: {payload[:200]}") from None
                if "error" in chunk:
                    raise ItemError(f"the target failed mid-stream: {chunk['error']}")
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if piece:
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        parts.append(piece)
                    finish = choice.get("finish_reason") or finish
        return ChatResult(
            "".join(parts),
            time.perf_counter() - started,
            ttft,
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            finish,
            content_chunks=len(parts),
        )

    async def echo_logprobs(self, text: str) -> tuple[list[str], list[float | None], list[int]]:
        """Tokens, logprobs and character offsets of ``text`` scored by the model
        (``/v1/completions`` with ``echo=true, logprobs=1, max_tokens=0``)."""
        data = await self._post(
            "/completions",
            {
                "model": self.model,
                "prompt": text,
                "echo": True,
                "logprobs": 1,
                "max_tokens": 0,
                "temperature": 0,
            },
        )
        try:
            lp = data["choices"][0]["logprobs"]
            return list(lp["tokens"]), list(lp["token_logprobs"]), list(lp["text_offset"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ItemError(f"the target returned no prompt logprobs ({exc!r})") from None

    async def loglikelihood(self, context: str, continuation: str) -> tuple[float, int]:
        """Sum of the logprobs of ``continuation`` after ``context``, and its token count."""
        tokens, logprobs, offsets = await self.echo_logprobs(context + continuation)
        start = len(context)
        picked = [
            lp
            for lp, off, tok in zip(logprobs, offsets, tokens, strict=False)
            if off + len(tok) > start and lp is not None
        ]
        if not picked:
            raise ItemError("no continuation token was scored (empty continuation?)")
        return float(sum(picked)), len(picked)


def _http_error(r: httpx.Response, where: str) -> ItemError:
    try:
        message = r.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = r.text[:300] or r.reason_phrase
    return ItemError(f"{where} answered HTTP {r.status_code}: {message}")


# the in-process gateway -------------------------------------------------------------------
class InProcessGateway:
    """Herald's OpenAI routers over a model pool, served by uvicorn on a loopback port in a
    thread with its own event loop (so blocking callers such as lm-eval can use it too)."""

    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool
        self.base_url = ""
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._error: BaseException | None = None

    def start(self) -> str:
        import uvicorn
        from fastapi import FastAPI

        from herald.serving.chat.router import router as chat_router
        from herald.serving.completions.router import router as completions_router
        from herald.serving.embeddings.router import router as embeddings_router
        from herald.serving.models.router import router as models_router

        app = FastAPI(title="herald eval gateway")
        for make in (models_router, chat_router, completions_router, embeddings_router):
            app.include_router(make(lambda: self.pool), prefix="/v1")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = server = uvicorn.Server(config)

        async def serve() -> None:
            try:
                await server.serve(sockets=[sock])
            finally:
                await self.pool.close()

        def run() -> None:
            try:
                asyncio.run(serve())
            except BaseException as exc:  # reported by start()/stop()
                self._error = exc

        self._thread = threading.Thread(target=run, name="herald-eval-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if self._error is not None or not self._thread.is_alive():
                raise TargetUnreachable(f"the evaluation gateway did not start: {self._error}")
            if time.monotonic() > deadline:
                raise TargetUnreachable("the evaluation gateway did not start within 30 s")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)


def build_pool(
    spec: TargetSpec, settings: Settings | None = None, registry: Registry | None = None
) -> ModelPool:
    """A model pool that serves ``spec`` (registry versions, bundled and configured models)."""
    from herald.serving.pool import ModelPool, ModelSpec
    from herald.settings import Settings as _Settings

    settings = settings or _Settings()
    pool = ModelPool.from_settings(settings.serving, registry=registry)
    if registry is not None:
        pool.registry = registry  # registry targets need it even if serving.registry is off
    if spec.kind == "checkpoint":
        pool.specs[spec.model] = ModelSpec(
            spec.model,
            spec.backend or "transformers",
            spec.ref,
            dict(spec.backend_options),
            source="settings",
        )
    elif spec.backend is not None:
        pool.specs[spec.model] = _override(spec, ModelSpec)
    return pool


def _override(spec: TargetSpec, model_spec: type[ModelSpec]) -> ModelSpec:
    return model_spec(spec.model, spec.backend or "fake", spec.model, dict(spec.backend_options))


@asynccontextmanager
async def open_target(
    spec: TargetSpec,
    *,
    settings: Settings | None = None,
    registry: Registry | None = None,
    timeout: float = 300.0,
) -> AsyncIterator[tuple[OpenAIClient, str]]:
    """An :class:`OpenAIClient` for ``spec`` and the base URL it talks to (an in-process
    gateway is started for registry, checkpoint and served targets and stopped afterwards)."""
    gateway: InProcessGateway | None = None
    if spec.kind in IN_PROCESS:
        pool = await asyncio.to_thread(build_pool, spec, settings, registry)
        gateway = InProcessGateway(pool)
        base_url = await asyncio.to_thread(gateway.start)
        transport: httpx.AsyncBaseTransport | None = None
    else:
        assert spec.base_url is not None
        base_url = spec.base_url
        transport = None
        if spec.kind == "endpoint":  # a caller's URL: the egress policy on every connection
            from herald.security.egress import AsyncEgressTransport, EgressPolicy, check_url

            await asyncio.to_thread(check_url, base_url, settings)
            transport = AsyncEgressTransport(EgressPolicy.of(settings))
    client = OpenAIClient(
        base_url, spec.model, api_key=spec.api_key, timeout=timeout, transport=transport
    )
    try:
        await client.check()
        yield client, base_url
    finally:
        await client.aclose()
        if gateway is not None:
            await asyncio.to_thread(gateway.stop)
