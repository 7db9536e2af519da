"""Event-log adapters by URL scheme; third parties add theirs through the
``herald.event_logs`` entry-point group."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from herald.bus.base import EventLog
from herald.errors import BackendUnavailable, ConfigurationError

BUILTIN = {
    "memory": "herald.bus.memory:MemoryEventLog",
    "sqlite": "herald.bus.sqlite:SQLiteEventLog",
    "postgresql": "herald.bus.postgres:PostgresEventLog",
    "postgres": "herald.bus.postgres:PostgresEventLog",
    "postgresql+psycopg": "herald.bus.postgres:PostgresEventLog",
}


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise BackendUnavailable(f"cannot load event-log adapter {target}: {exc}") from exc


def schemes() -> list[str]:
    names = set(BUILTIN)
    names.update(ep.name for ep in entry_points(group="herald.event_logs"))
    return sorted(names)


def open_event_log(url: str, **options: Any) -> EventLog:
    """Create (not start) the event log for ``url``."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    target = BUILTIN.get(scheme)
    if target is None:
        for ep in entry_points(group="herald.event_logs"):
            if ep.name == scheme:
                cls = ep.load()
                break
        else:
            raise ConfigurationError(
                f"no event-log adapter for {url!r}; known schemes: {', '.join(schemes())}"
            )
    else:
        cls = _load(target)
    log: EventLog = cls(url, **options)
    return log
