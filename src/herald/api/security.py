"""Bearer-key authentication for every route but the probes (body size and per-key
concurrency: :mod:`herald.serving.limits`, which runs after this middleware).

With a :class:`SessionAuth` (the dashboard's server-side session cookie), requests without an
``Authorization`` header may authenticate by cookie instead; unsafe methods then also need the
CSRF token. With a :class:`~herald.security.throttle.FailureThrottle`, wrong keys count against
the client address, and an address locked out gets 429 + ``Retry-After`` for every request that
sends a key until the lockout ends (its keys are not checked meanwhile).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from herald.api.errors import error_response
from herald.auth import check_key
from herald.security.callers import mark_caller, redacting_errors
from herald.security.throttle import FailureThrottle, client_address

PUBLIC = frozenset({"/healthz", "/readyz"})


class ClientKeys(Protocol):
    """Per-client keys (``herald.serving.keys.KeyStore``): scopes and rate limits."""

    async def authorize(self, key: str, path: str) -> tuple[int, str, dict[str, str]] | None: ...


class SessionAuth(Protocol):
    """Cookie sessions (``herald.dashboard.session.Sessions``)."""

    def is_public(self, path: str) -> bool: ...

    def has_session(self, headers: Mapping[str, str]) -> bool: ...

    async def authenticate(
        self, headers: Mapping[str, str], method: str
    ) -> tuple[int, str, str] | None: ...


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        api_key: str,
        max_body_bytes: int,
        keys: ClientKeys | None = None,
        sessions: SessionAuth | None = None,
        throttle: FailureThrottle | None = None,
        home: Path | None = None,
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body = max_body_bytes
        self.keys = keys  # client keys: the data plane by scope, rate-limited
        self.sessions = sessions  # dashboard cookie sessions (admin, CSRF-checked)
        self.throttle = throttle  # failed keys per client address -> 429 lockout
        self.home = home  # shown as $HERALD_HOME in errors to non-admin callers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        if self.sessions is not None and self.sessions.is_public(scope["path"]):
            await self.app(scope, receive, send)  # dashboard pages check the session themselves
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        client = client_address(scope)
        if auth and self.throttle is not None:
            wait = self.throttle.retry_after(client)
            if wait is not None:  # locked out: refuse before checking the key
                status, msg, extra = self.throttle.refusal(wait)
                locked: Any = error_response(status, msg, "auth_throttled")
                locked.headers.update(extra)
                await locked(scope, receive, send)
                return
        is_admin = scheme.lower() == "bearer" and check_key(token.strip(), self.api_key)
        if not auth and self.sessions is not None and self.sessions.has_session(headers):
            denied = await self.sessions.authenticate(headers, scope["method"])
            if denied is not None:
                await error_response(*denied)(scope, receive, send)
                return
            is_admin = True
        if not is_admin:
            refusal: tuple[int, str, dict[str, str]] | None = (401, "invalid API key", {})
            if scheme.lower() == "bearer" and token.strip() and self.keys is not None:
                refusal = await self.keys.authorize(token.strip(), scope["path"])
            if refusal is not None:
                status, msg, extra = refusal
                codes = {401: "unauthorized", 403: "insufficient_scope", 429: "rate_limited"}
                code = codes.get(status, "unauthorized")
                if not auth:
                    msg = "missing API key: send 'Authorization: Bearer <key>'"
                elif status == 401 and self.throttle is not None:
                    lockout = self.throttle.failure(client, "api_key")
                    if lockout is not None:
                        status, msg, extra = self.throttle.refusal(lockout)
                        code = "auth_throttled"
                resp: Any = error_response(status, msg, code)
                resp.headers.update(extra)
                await resp(scope, receive, send)
                return
        mark_caller(scope, is_admin)
        if not is_admin:  # a client key: no absolute server paths in its error messages
            send = redacting_errors(send, self.home)
        # the body limit (declared and chunked) is herald.serving.limits.BodyLimit, inside
        await self.app(scope, receive, send)
