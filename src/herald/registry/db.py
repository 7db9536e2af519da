"""Engines for the registry: the same database URL as the event log (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from herald.store.engine import make_engine

__all__ = ["dumps", "loads", "make_engine", "now_us", "to_dt"]


def now_us() -> int:
    return int(time.time() * 1_000_000)


def to_dt(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1_000_000, UTC)


def dumps(value: Any) -> str:
    try:
        return json.dumps(value if value is not None else {}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        from herald.registry.models import InvalidRegistryRequest

        raise InvalidRegistryRequest(f"value is not JSON-serialisable: {exc}") from exc


def loads(text: str | None) -> Any:
    return json.loads(text) if text else {}
