"""Bearer-key authentication and request-size limits for every route but the probes.

With a :class:`SessionAuth` (the dashboard's signed session cookie), requests without an
``Authorization`` header may authenticate by cookie instead; unsafe methods then also need the
CSRF token. Bearer keys work exactly as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from herald.api.errors import error_response
from herald.auth import check_key

PUBLIC = frozenset({"/healthz", "/readyz"})


class ClientKeys(Protocol):
    """Per-client keys (``herald.serving.keys.KeyStore``): scopes and rate limits."""

    async def authorize(self, key: str, path: str) -> tuple[int, str, dict[str, str]] | None: ...


class SessionAuth(Protocol):
    """Cookie sessions (``herald.dashboard.session.Sessions``)."""

    def is_public(self, path: str) -> bool: ...

    def has_session(self, headers: Mapping[str, str]) -> bool: ...

    def authenticate(
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
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body = max_body_bytes
        self.keys = keys  # client keys: the data plane by scope, rate-limited
        self.sessions = sessions  # dashboard cookie sessions (admin, CSRF-checked)

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
        is_admin = scheme.lower() == "bearer" and check_key(token.strip(), self.api_key)
        if not auth and self.sessions is not None and self.sessions.has_session(headers):
            denied = self.sessions.authenticate(headers, scope["method"])
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
                if not auth:
                    msg = "missing API key: send 'Authorization: Bearer <key>'"
                codes = {401: "unauthorized", 403: "insufficient_scope", 429: "rate_limited"}
                resp: Any = error_response(status, msg, codes.get(status, "unauthorized"))
                resp.headers.update(extra)
                await resp(scope, receive, send)
                return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await error_response(
                413,
                f"request body of {length} bytes exceeds the {self.max_body}-byte limit",
                "payload_too_large",
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)
