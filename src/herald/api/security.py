"""Bearer-key authentication and request-size limits for every route but the probes."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from herald.api.errors import error_response
from herald.auth import check_key

PUBLIC = frozenset({"/healthz", "/readyz"})


class AuthMiddleware:
    def __init__(self, app: ASGIApp, api_key: str, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not check_key(token.strip(), self.api_key):
            msg = (
                "missing API key: send 'Authorization: Bearer <key>'"
                if not auth
                else "invalid API key"
            )
            await error_response(401, msg, "unauthorized")(scope, receive, send)
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
