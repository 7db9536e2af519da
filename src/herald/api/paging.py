"""Keyset (cursor) pagination shared by every list endpoint.

A list endpoint takes ``limit`` and ``cursor`` and answers ``{"data": [...], "next_cursor": ...}``.
The cursor is opaque to clients: urlsafe base64 (unpadded) of a small JSON object
``{"k": KIND, "v": [key...]}`` where KIND names the listing (so a cursor from one endpoint is
refused by another) and the key is the last row's position in the listing's stable total order
(for example ``(created_us, id)`` newest first). The next page is "rows strictly after that key",
never an OFFSET, so rows inserted between two requests are neither repeated nor skipped.

The store is asked for ``limit + 1`` rows; the extra row only tells whether another page exists,
so ``next_cursor`` is ``null`` exactly on the last page (no trailing empty page).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from herald.errors import HeraldError
from herald.security.json_edge import INT64_MAX, INT64_MIN

T = TypeVar("T")

MAX_CURSOR_CHARS = 1024
CURSOR_HELP = "Opaque: the next_cursor of the previous page (omit for the first page)."


class InvalidCursor(HeraldError):
    """The ``cursor`` query parameter is not a cursor this endpoint issued."""

    code = "invalid_cursor"
    status = 422


def encode_cursor(kind: str, key: Sequence[Any]) -> str:
    """The opaque cursor for the row at ``key`` in listing ``kind``."""
    raw = json.dumps({"k": kind, "v": list(key)}, separators=(",", ":"), allow_nan=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str | None, kind: str, types: Sequence[type], *, endpoint: str
) -> tuple[Any, ...] | None:
    """The key inside ``cursor`` (None when no cursor was given).

    ``types`` are the key's element types, in order; ``endpoint`` names the listing in errors.
    Anything else — not base64, not JSON, another listing's cursor, a key of the wrong shape —
    raises :class:`InvalidCursor` (422) naming the ``cursor`` parameter.
    """
    if cursor is None or cursor == "":
        return None
    hint = f"pass the next_cursor of a previous {endpoint} response unchanged, or omit it"
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor(f"query parameter 'cursor' is too long to be a cursor; {hint}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidCursor(f"query parameter 'cursor' is malformed; {hint}") from None
    if not isinstance(body, dict) or not isinstance(body.get("v"), list):
        raise InvalidCursor(f"query parameter 'cursor' is malformed; {hint}")
    if body.get("k") != kind:
        other = body.get("k")
        source = f"the {other!r} listing" if isinstance(other, str) else "another listing"
        raise InvalidCursor(
            f"query parameter 'cursor' belongs to {source}, not to {endpoint}; {hint}"
        )
    values = body["v"]
    if len(values) != len(types) or not all(_is(v, t) for v, t in zip(values, types, strict=True)):
        raise InvalidCursor(f"query parameter 'cursor' is malformed; {hint}")
    return tuple(float(v) if t is float else v for v, t in zip(values, types, strict=True))


def _is(value: Any, t: type) -> bool:
    if isinstance(value, bool):
        return False
    if t is float:  # finite: NaN or inf would reach the store's comparison
        return isinstance(value, int | float) and math.isfinite(value)
    if t is int:  # the BIGINT columns keys live in
        return isinstance(value, int) and INT64_MIN <= value <= INT64_MAX
    if t is str:  # NUL and lone surrogates cannot be stored, so never match a row
        return isinstance(value, str) and _storable(value)
    return isinstance(value, t)


def _storable(s: str) -> bool:
    if "\x00" in s:
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def page(
    rows: Sequence[T],
    limit: int,
    kind: str,
    key: Callable[[T], Sequence[Any]],
    render: Callable[[T], Any],
) -> dict[str, Any]:
    """The response for ``rows`` fetched with ``limit + 1``: at most ``limit`` rendered rows and
    the cursor of the last one when more rows exist, else ``None``."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return {
        "data": [render(r) for r in shown],
        "next_cursor": encode_cursor(kind, key(shown[-1])) if more else None,
    }
