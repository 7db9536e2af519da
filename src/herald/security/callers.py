"""Who is calling, for the layers behind authentication, and error bodies without server paths.

:class:`~herald.api.security.AuthMiddleware` marks each authenticated request with
:func:`mark_caller`; :func:`is_admin` reads the mark (``GET /v1/models`` shows server paths to
admin callers only). For a caller without the admin key, :func:`redacting_errors` wraps the
ASGI ``send`` so that every JSON error body has its absolute server paths replaced
(:func:`herald.security.privilege.redact_paths`) — whatever raised the error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from starlette.types import Message, Send

from herald.security.privilege import redact_json

ADMIN_FLAG = "herald_admin"


def mark_caller(scope: MutableMapping[str, Any], admin: bool) -> None:
    """Record in ``scope`` whether the caller holds the admin key (or a dashboard session)."""
    scope.setdefault("state", {})[ADMIN_FLAG] = admin


def is_admin(scope: Mapping[str, Any]) -> bool:
    """Whether the auth middleware marked this request's caller as admin (else: not)."""
    state = scope.get("state")
    return isinstance(state, Mapping) and state.get(ADMIN_FLAG) is True


MAX_ERROR_BODY = 1 << 20  # error bodies larger than this pass unchanged (none are)


def redacting_errors(send: Send, home: Path | str | None) -> Send:
    """``send`` for a non-admin caller: the JSON body of every error response (status >= 400)
    has absolute server paths replaced (see :func:`redact_paths`); other responses pass."""
    held: list[Message] = []
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            ctype = dict(message.get("headers", [])).get(b"content-type", b"")
            if message["status"] >= 400 and ctype.startswith(b"application/json"):
                held.append(message)
                return
            await send(message)
            return
        if not held or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False) and sum(map(len, chunks)) <= MAX_ERROR_BODY:
            return
        body = b"".join(chunks)
        start = held.pop()
        if not message.get("more_body", False):
            body = _redacted_body(body, home)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if not message.get("more_body", False):
            headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send(
            {
                "type": "http.response.body",
                "body": body,
                "more_body": message.get("more_body", False),
            }
        )

    return wrapped


def _redacted_body(body: bytes, home: Path | str | None) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    return json.dumps(redact_json(data, home), ensure_ascii=False).encode()
