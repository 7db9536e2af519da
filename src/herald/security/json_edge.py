"""Hostile values stopped at the HTTP edge, before any route parses them.

One ASGI middleware covers every route of every Herald app (control plane, OpenAI data plane,
role apps). It refuses, with a 4xx in the format of the route's plane:

- JSON bodies nested deeper than ``security.limits.max_json_depth`` (checked on the raw bytes,
  so a 5,000-deep body never reaches a recursive parser);
- ``NaN``, ``Infinity``, ``-Infinity`` (not JSON, though Python's parser takes them) and numbers
  that overflow a 64-bit float (``1e400`` would be stored as ``null``);
- integers outside the signed 64-bit range every store holds (SQLite and PostgreSQL ``BIGINT``);
- bodies that are not UTF-8, and strings holding a lone UTF-16 surrogate (``"\\ud800"``) or
  U+0000 (PostgreSQL can store neither; file APIs refuse NUL);
- NUL in the URL path or the query string.

A body is checked when it is JSON by its ``Content-Type`` (``application/json``,
``application/*+json``), has none, or goes to an OpenAI route (which parses any body as
JSON). Other bodies (forms, uploads) pass untouched. A body that is merely malformed JSON
also passes, so each route keeps its own ``invalid_json`` error. Refusals are logged and
reported to ``on_refused`` (a metric) with their code.
"""

from __future__ import annotations

import json
import logging
import math
import re
import weakref
from collections.abc import Callable
from typing import Any

import anyio
from prometheus_client import CollectorRegistry, Counter
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "INT64_MIN",
    "HostileValue",
    "JSONEdgeMiddleware",
    "check_json",
    "check_target",
    "install",
    "is_openai_path",
]

log = logging.getLogger("herald.security")

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})
_OFF_LOOP_BYTES = 256 * 1024  # bodies above this are checked in a worker thread
_SUSPECT = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")  # an escape that may decode to one


class HostileValue(Exception):
    """A value the edge refuses; ``status`` and ``code`` go into the error object."""

    def __init__(self, message: str, code: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def is_openai_path(path: str) -> bool:
    """True for the OpenAI-compatible data plane, whose errors are OpenAI error objects."""
    return path in OPENAI_PATHS or path == "/v1/models" or path.startswith("/v1/models/")


def _too_deep(limit: int) -> HostileValue:
    return HostileValue(
        f"the JSON body is nested more than {limit} levels deep; flatten it "
        "(the limit is the setting security.limits.max_json_depth)",
        "json_too_deep",
    )


def _constant(name: str) -> Any:
    raise HostileValue(
        f"the JSON body holds {name}, which is not a JSON number; send a finite number or null",
        "non_finite_number",
    )


def _depth(value: Any, limit: int) -> None:
    """Level by level over the containers only (cheap even for a wide 1 MiB body)."""
    level = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise _too_deep(limit)
        below: list[Any] = []
        for v in level:
            items = v.values() if type(v) is dict else v if type(v) is list else ()
            below += [x for x in items if type(x) is dict or type(x) is list]
        level = below


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise HostileValue(
            f"the number {shown} in the JSON body does not fit a 64-bit float; "
            "send a number whose magnitude is below 1.8e308",
            "non_finite_number",
        )
    return value


def _int(text: str) -> int:
    if len(text) <= 18:  # at most 18 digits (and a sign): always inside 64 bits
        return int(text)
    value = int(text) if len(text) <= 40 else INT64_MAX + 1
    if not INT64_MIN <= value <= INT64_MAX:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise HostileValue(
            f"the integer {shown} in the JSON body is outside the range Herald stores "
            "(-2^63 to 2^63-1); send a smaller integer, or a float (1e30) or a string "
            "where the field takes one",
            "integer_out_of_range",
        )
    return value


def _bad_string(s: str) -> str | None:
    if "\x00" in s:
        return "U+0000 (NUL)"
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone UTF-16 surrogate"
    return None


def _strings(value: Any, where: str) -> None:
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        v, at = stack.pop()
        if isinstance(v, str):
            what = _bad_string(v)
        elif isinstance(v, dict):
            what = None
            for k, item in v.items():
                if (bad := _bad_string(k)) is not None:
                    raise _string_error(bad, f"a key of {at}")
                stack.append((item, f"{at}.{k}"))
        elif isinstance(v, list):
            what = None
            stack.extend((item, f"{at}[{i}]") for i, item in enumerate(v))
        else:
            what = None
        if what is not None:
            raise _string_error(what, at)


def _string_error(what: str, at: str) -> HostileValue:
    return HostileValue(
        f"the string at {at} holds {what}, which Herald cannot store; remove it "
        "(send text as valid UTF-8, and binary data base64-encoded)",
        "invalid_string",
    )


def check_json(body: bytes, max_depth: int) -> None:
    """Raise :class:`HostileValue` when ``body`` holds a value the edge refuses; return
    quietly for acceptable JSON and for malformed JSON (the route reports that).

    The body is parsed once (numbers checked as they are parsed); the walks over the parsed
    value run only when a cheap scan says they can find something: more brackets than the
    depth limit, a ``\\u`` escape that may be a surrogate or NUL."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HostileValue(
            "the request body is not valid UTF-8; send JSON encoded as UTF-8",
            "invalid_json",
            status=400,
        ) from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError:
        return  # malformed JSON: the route answers with its own invalid_json error
    if body.count(b"[") + body.count(b"{") > max_depth:  # else it cannot be deeper
        _depth(value, max_depth)
    if _SUSPECT.search(body) is not None:
        _strings(value, "body")


def check_target(path: str, query_string: bytes) -> None:
    """Refuse NUL in the URL path or query string (stores and file APIs cannot take it)."""
    if "\x00" in path:
        raise HostileValue(
            "the URL path holds U+0000 (NUL); remove it", "invalid_string", status=422
        )
    q = query_string.lower()
    if b"%00" in q or b"\x00" in q:
        raise HostileValue(
            "a query parameter holds U+0000 (NUL, %00); remove it", "invalid_string", status=422
        )


def _is_json(scope: Scope) -> bool:
    for k, v in scope["headers"]:
        if k == b"content-type":
            kind = v.split(b";", 1)[0].strip().lower()
            return bool(
                kind == b"application/json"
                or (kind.startswith(b"application/") and kind.endswith(b"+json"))
            )
    return True  # no Content-Type: FastAPI parses the body as JSON


class JSONEdgeMiddleware:
    """Pure ASGI middleware: checks the target, then buffers and checks a JSON body before the
    route sees it (the body is replayed to the app unchanged)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_depth: int = 64,
        max_body_bytes: int = 1 << 20,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.max_body = max_body_bytes
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_target(scope["path"], scope.get("query_string", b""))
        except HostileValue as exc:
            await self._refuse(scope, exc)(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS") or not (
            _is_json(scope) or is_openai_path(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending the body
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                too_large = HostileValue(
                    f"the request body exceeds the {self.max_body}-byte limit",
                    "payload_too_large",
                    status=413,
                )
                await self._refuse(scope, too_large)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                if len(body) > _OFF_LOOP_BYTES:
                    await anyio.to_thread.run_sync(check_json, body, self.max_depth)
                else:
                    check_json(body, self.max_depth)
            except HostileValue as exc:
                await self._refuse(scope, exc)(scope, receive, send)
                return
        await self.app(scope, _replay([body], None, receive), send)

    def _refuse(self, scope: Scope, exc: HostileValue) -> JSONResponse:
        log.warning("refused %s %s: %s (%s)", scope["method"], scope["path"], exc.code, exc.message)
        if self.on_refused is not None:
            self.on_refused(exc.code)
        if is_openai_path(scope["path"]):
            body = {
                "error": {
                    "message": exc.message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": exc.code,
                }
            }
            return JSONResponse(body, status_code=413 if exc.status == 413 else 400)
        kind = "invalid_request_error"
        return JSONResponse(
            {"error": {"message": exc.message, "type": kind, "code": exc.code}},
            status_code=exc.status,
        )


def _replay(bodies: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that first hands the buffered body back, then the real channel (so a
    route still sees ``http.disconnect`` when the client leaves)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if pending is not None:
                return pending
            return {"type": "http.request", "body": b"".join(bodies), "more_body": False}
        return await receive()

    return replay


_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def _counter(registry: CollectorRegistry) -> Counter:
    found = _COUNTERS.get(registry)
    if found is None:
        found = _COUNTERS[registry] = Counter(
            "herald_requests_refused",
            "Requests refused at the JSON/HTTP edge (hostile values), by error code",
            ["reason"],
            registry=registry,
        )
    return found


def install(
    app: Any, *, max_depth: int, max_body_bytes: int, registry: CollectorRegistry | None
) -> None:
    """Add :class:`JSONEdgeMiddleware` to a Starlette/FastAPI ``app``; call it before adding
    the authentication and body-limit middleware so that it runs after them (innermost)."""
    counter = _counter(registry) if registry is not None else None
    app.add_middleware(
        JSONEdgeMiddleware,
        max_depth=max_depth,
        max_body_bytes=max_body_bytes,
        on_refused=(lambda code: counter.labels(code).inc()) if counter is not None else None,
    )
