"""The shared cursor helper: round trips, kind tags, and every way a cursor can be wrong."""

from __future__ import annotations

import base64

import pytest

from herald.api.paging import InvalidCursor, decode_cursor, encode_cursor, page


def test_round_trip_keeps_exact_values() -> None:
    for kind, key, types in (
        ("jobs", (1_764_000_000_123_457, "0193f1-abc"), (int, str)),
        ("evaluations", (1764000000.1234567, "ev-1"), (float, str)),
        ("evaluations", (1764000000.0, "ev-2"), (float, str)),
        ("models", ("é-model",), (str,)),
        ("versions:demo", (7,), (int,)),
    ):
        cursor = encode_cursor(kind, key)
        assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # URL-safe as is
        assert decode_cursor(cursor, kind, types, endpoint="GET /x") == key
    assert decode_cursor(None, "jobs", (int, str), endpoint="GET /x") is None
    assert decode_cursor("", "jobs", (int, str), endpoint="GET /x") is None


@pytest.mark.parametrize(
    ("cursor", "why"),
    [
        ("!!!", "malformed"),
        (base64.urlsafe_b64encode(b"\xff\xfe").decode(), "malformed"),
        (base64.urlsafe_b64encode(b"[1, 2]").decode(), "malformed"),
        (base64.urlsafe_b64encode(b'{"k": "jobs"}').decode(), "malformed"),
        (encode_cursor("jobs", (1,)), "malformed"),
        (encode_cursor("jobs", ("1", "a")), "malformed"),
        (encode_cursor("jobs", (True, "a")), "malformed"),
        (encode_cursor("runs", (1, "a")), "belongs to the 'runs' listing"),
        ("x" * 2000, "too long"),
    ],
)
def test_bad_cursors_name_the_parameter_and_endpoint(cursor: str, why: str) -> None:
    with pytest.raises(InvalidCursor) as exc:
        decode_cursor(cursor, "jobs", (int, str), endpoint="GET /v1/jobs")
    message = exc.value.message
    assert why in message and "'cursor'" in message and "GET /v1/jobs" in message
    assert exc.value.status == 422 and exc.value.code == "invalid_cursor"


def test_page_sets_next_cursor_only_when_more_rows_exist() -> None:
    rows = [{"id": i} for i in range(5)]
    full = page(rows, 4, "t", lambda r: (r["id"],), dict)
    assert [r["id"] for r in full["data"]] == [0, 1, 2, 3]
    assert decode_cursor(full["next_cursor"], "t", (int,), endpoint="x") == (3,)
    assert page(rows[:4], 4, "t", lambda r: (r["id"],), dict)["next_cursor"] is None
    assert page([], 4, "t", lambda r: (r["id"],), dict) == {"data": [], "next_cursor": None}
