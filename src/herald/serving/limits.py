"""Data-plane fairness: no single client key can freeze the server or starve the others.

Three limits, each refused with a clear error, a log line and a count in
``herald_limit_refusals_total{reason, key}``:

* :class:`BodyLimit` (ASGI) counts request-body bytes as they arrive, so the limit
  (``api.max_body_bytes``) holds for ``Transfer-Encoding: chunked`` too, not only for a
  declared ``Content-Length``: 413 ``payload_too_large``.
* :func:`check_prompt_chars` bounds a prompt in characters (``security.limits.max_prompt_chars``)
  before anything tokenizes it: 400 ``context_length_exceeded``.
* :class:`KeyConcurrency` (ASGI) lets each client key have ``max_concurrent_per_key`` requests in
  flight; ``max_queued_per_key`` more wait in a FIFO queue (at most ``queue_timeout_s``), beyond
  that 429 ``concurrency_limit_exceeded`` with ``Retry-After``. A request holds its slot until its
  response ends, so a stream holds it until the last event. The admin key (``HERALD_API_KEY``)
  and dashboard sessions are not limited per key: the operator's own key stays usable while
  clients saturate theirs.

:func:`install` adds both middlewares to an app, inside the authentication middleware (add them
before it), so unauthenticated requests never hold a slot or get their body read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herald.auth import check_key
from herald.serving.errors import BadParameter, ServingError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from herald.settings import LimitSettings

log = logging.getLogger("herald.security")

PROBES = frozenset({"/healthz", "/readyz"})
ADMIN = "admin"


class RequestTooLarge(ServingError):
    code = "payload_too_large"
    status = 413
    type = "invalid_request_error"


class PromptTooLong(BadParameter):
    code = "context_length_exceeded"


class KeyBusy(ServingError):
    code = "concurrency_limit_exceeded"
    status = 429
    type = "rate_limit_error"


class LimitMetrics:
    """``herald_limit_refusals_total``: requests refused by a fairness limit."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, LimitMetrics] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.refusals = Counter(
            "herald_limit_refusals",
            "Requests refused by a data-plane limit (body size, prompt size, per-key concurrency)",
            ["reason", "key"],
            registry=registry,
        )
        self.running = Gauge(
            "herald_key_requests_running",
            "Requests of a client key in flight (security.limits.max_concurrent_per_key)",
            ["key"],
            registry=registry,
        )
        self.waiting = Gauge(
            "herald_key_requests_waiting",
            "Requests of a client key queued for a slot (security.limits.max_queued_per_key)",
            ["key"],
            registry=registry,
        )

    @classmethod
    def of(cls, registry: CollectorRegistry) -> LimitMetrics:
        """The counters registered on ``registry`` (created once per registry)."""
        found = cls._by_registry.get(registry)
        if found is None:
            found = cls._by_registry[registry] = cls(registry)
        return found

    def refused(self, reason: str, key: str | None) -> None:
        self.refusals.labels(reason, key or "-").inc()

    def observe(self, key: str, gate: KeyGate) -> None:
        self.running.labels(key).set(gate.running)
        self.waiting.labels(key).set(len(gate.waiters))


def client_key_id(scope: Scope, admin_key: str) -> str | None:
    """``"admin"`` for the admin key or a session, the id of a client key
    (``hk_c_<id>_<secret>``), else None. Call only after authentication passed."""
    auth = ""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            auth = value.decode("latin-1")
            break
    if not auth:
        return ADMIN  # authenticated without a header: a dashboard session (admin)
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if check_key(token, admin_key):
        return ADMIN
    if token.startswith("hk_c_"):
        kid = token[5:].split("_", 1)[0]
        return kid or None
    return None


async def _send_error(send: Send, exc: ServingError, headers: dict[str, str]) -> None:
    body = json.dumps(exc.body()).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": exc.status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _too_large(limit: int, declared: int | None = None) -> RequestTooLarge:
    size = f"of {declared} bytes " if declared is not None else ""
    return RequestTooLarge(
        f"The request body {size}exceeds this server's limit of {limit} bytes. Send a smaller "
        "request: shorten the prompt or split the input into several requests (the operator "
        "sets the limit with api.max_body_bytes)."
    )


class _BodyOverLimit(Exception):
    """Raised into the app by the wrapped ``receive`` once the body passes the limit."""


class BodyLimit:
    """Refuse request bodies over ``max_body_bytes`` with 413, however they are framed."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, admin_key: str, metrics: Any) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.admin_key = admin_key
        self.metrics: LimitMetrics | None = metrics

    def _refused(self, scope: Scope, received: int | None) -> None:
        key = client_key_id(scope, self.admin_key)
        log.warning(
            "refused %s %s from key %s: body over the %d-byte limit%s",
            scope.get("method"),
            scope.get("path"),
            key or "-",
            self.limit,
            f" ({received} bytes declared)" if received is not None else " (chunked)",
        )
        if self.metrics is not None:
            self.metrics.refused("body_too_large", key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length" and value.isdigit() and int(value) > self.limit:
                self._refused(scope, int(value))  # the fast path: declared too large
                await _send_error(send, _too_large(self.limit, int(value)), {})
                return
        received = 0
        over = False
        started = False  # the app's response began (before the limit was passed)
        ended = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                raise _BodyOverLimit
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    self._refused(scope, None)
                    raise _BodyOverLimit
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, ended
            if ended:
                return
            if over and not started:
                ended = True  # whatever the app answers to the exception: our 413 instead
                await _send_error(send, _too_large(self.limit), {})
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not ended:
            ended = True
            if started:  # the response already began: end it cleanly, without more body
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await _send_error(send, _too_large(self.limit), {})


class KeyGate:
    """``limit`` holders at once, ``max_queued`` waiting in FIFO order, then :class:`KeyBusy`;
    ``on_change`` sees every change of the counts (metrics)."""

    def __init__(
        self, limit: int, max_queued: int, on_change: Callable[[KeyGate], None] | None = None
    ) -> None:
        self.limit = limit
        self.max_queued = max_queued
        self.running = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.on_change = on_change or (lambda _: None)

    @property
    def idle(self) -> bool:
        return self.running == 0 and not self.waiters

    async def acquire(self, timeout_s: float) -> None:
        """Take a slot, waiting at most ``timeout_s`` (then :class:`TimeoutError`)."""
        if self.running < self.limit and not self.waiters:
            self.running += 1
            self.on_change(self)
            return
        if len(self.waiters) >= self.max_queued:
            raise KeyBusy("queue full")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        self.on_change(self)
        try:
            async with asyncio.timeout(timeout_s):
                await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just as we gave up: pass it on
            else:
                fut.cancel()
                if fut in self.waiters:
                    self.waiters.remove(fut)
                self.on_change(self)
            raise

    def release(self) -> None:
        """Hand the slot to the first waiter, or free it."""
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # running stays the same: the slot changes hands
                self.on_change(self)
                return
        self.running -= 1
        self.on_change(self)


class KeyConcurrency:
    """Per client key: ``max_concurrent`` requests in flight, ``max_queued`` waiting, then 429."""

    def __init__(
        self,
        app: ASGIApp,
        max_concurrent: int,
        max_queued: int,
        queue_timeout_s: float,
        admin_key: str,
        metrics: Any,
    ) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_s
        self.admin_key = admin_key
        self.metrics: LimitMetrics | None = metrics
        self.gates: dict[str, KeyGate] = {}

    def gate(self, key: str) -> KeyGate:
        gate = self.gates.get(key)
        if gate is None:
            m = self.metrics
            gate = self.gates[key] = KeyGate(
                self.max_concurrent,
                self.max_queued,
                None if m is None else (lambda g: m.observe(key, g)),
            )
        return gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        key = client_key_id(scope, self.admin_key)
        if key is None or key == ADMIN:
            await self.app(scope, receive, send)
            return
        gate = self.gate(key)
        try:
            await gate.acquire(self.queue_timeout_s)
        except (KeyBusy, TimeoutError) as exc:
            self._drop_if_idle(key, gate)
            await self._refuse(scope, send, key, gate, waited=isinstance(exc, TimeoutError))
            return
        except BaseException:
            self._drop_if_idle(key, gate)
            raise
        try:
            await self.app(scope, receive, send)  # a stream holds its slot until it ends
        finally:
            gate.release()
            self._drop_if_idle(key, gate)

    def _drop_if_idle(self, key: str, gate: KeyGate) -> None:
        if gate.idle and self.gates.get(key) is gate:
            del self.gates[key]

    async def _refuse(
        self, scope: Scope, send: Send, key: str, gate: KeyGate, waited: bool
    ) -> None:
        why = (
            f"waited {self.queue_timeout_s:g} s for a free slot"
            if waited
            else f"{gate.running} running and {len(gate.waiters)} queued"
        )
        log.warning(
            "refused %s %s from key %s: per-key concurrency limit (%s)",
            scope.get("method"),
            scope.get("path"),
            key,
            why,
        )
        if self.metrics is not None:
            self.metrics.refused("key_concurrency", key)
        retry = max(1, math.ceil(min(self.queue_timeout_s, 5.0)))
        exc = KeyBusy(
            f"API key {key!r} already has {self.max_concurrent} requests in flight and "
            f"{self.max_queued} waiting ({why}). Wait for a response before sending more, or "
            f"retry after {retry} s; the operator sets the limit with "
            "security.limits.max_concurrent_per_key and max_queued_per_key."
        )
        await _send_error(send, exc, {"Retry-After": str(retry)})


def check_prompt_chars(
    sizes: Iterable[tuple[str, int]], limit: int | None, registry: CollectorRegistry | None
) -> None:
    """Raise :class:`PromptTooLong` (400) if a prompt is over ``limit`` characters.
    ``sizes`` are (param, characters) pairs, e.g. ``("messages", 1200)``, ``("input[3]", 90)``."""
    if limit is None:
        return
    for param, chars in sizes:
        if chars > limit:
            log.warning("refused a prompt of %d characters (%s; limit %d)", chars, param, limit)
            if registry is not None:
                LimitMetrics.of(registry).refused("prompt_too_long", None)
            raise PromptTooLong(
                f"The prompt ({param}) has {chars} characters, more than this server's limit of "
                f"{limit} characters (checked before tokenization). Shorten the prompt or split "
                "it into several requests; the operator sets the limit with "
                "security.limits.max_prompt_chars.",
                param=param,
            )


def install(
    app: FastAPI,
    *,
    max_body_bytes: int,
    limits: LimitSettings,
    admin_key: str,
    registry: CollectorRegistry | None,
) -> None:
    """Add :class:`BodyLimit` and :class:`KeyConcurrency` to ``app``; call before adding the
    authentication middleware so that these run after it (Starlette's last added runs first)."""
    metrics = LimitMetrics.of(registry) if registry is not None else None
    app.add_middleware(
        BodyLimit, max_body_bytes=max_body_bytes, admin_key=admin_key, metrics=metrics
    )
    app.add_middleware(
        KeyConcurrency,
        max_concurrent=limits.max_concurrent_per_key,
        max_queued=limits.max_queued_per_key,
        queue_timeout_s=limits.queue_timeout_s,
        admin_key=admin_key,
        metrics=metrics,
    )
