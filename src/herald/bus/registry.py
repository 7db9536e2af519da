"""Event-log adapters by URL scheme; third parties add theirs through the
``herald.event_logs`` entry-point group. A bus URL (``HERALD_BUS_URL``, e.g. ``nats://``) picks an
adapter by its scheme from ``BUSES`` / the ``herald.buses`` group, built as ``cls(database_url,
bus_url)``."""

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

BUSES = {
    "nats": "herald.bus.nats:NatsEventLog",
    "tls": "herald.bus.nats:NatsEventLog",
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


def _bus_adapter(bus_url: str) -> Any:
    scheme = bus_url.split("://", 1)[0].lower() if "://" in bus_url else ""
    target = BUSES.get(scheme)
    if target is not None:
        return _load(target)
    for ep in entry_points(group="herald.buses"):
        if ep.name == scheme:
            return ep.load()
    known = sorted({*BUSES, *(ep.name for ep in entry_points(group="herald.buses"))})
    raise ConfigurationError(
        f"no bus adapter for {bus_url.split('?', 1)[0]!r} (HERALD_BUS_URL); "
        f"known schemes: {', '.join(known)}"
    )


def open_event_log(url: str, bus_url: str | None = None, **options: Any) -> EventLog:
    """Create (not start) the event log for ``url``, carried over ``bus_url`` when given."""
    if bus_url:
        bus_log: EventLog = _bus_adapter(bus_url)(url, bus_url, **options)
        return bus_log
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
