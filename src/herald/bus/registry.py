"""Event-log adapters by URL scheme (the event-log port of :mod:`herald.adapters`); third
parties add theirs through the ``herald.event_logs`` entry-point group. A bus URL
(``HERALD_BUS_URL``, e.g. ``nats://``) picks an adapter by its scheme from :data:`BUSES` / the
``herald.buses`` group, built as ``cls(database_url, bus_url)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from herald.adapters import Adapters
from herald.bus.base import EventLog
from herald.errors import ConfigurationError

BUILTIN = {
    "memory": "herald.bus.memory:MemoryEventLog",
    "sqlite": "herald.bus.sqlite:SQLiteEventLog",
    "postgresql": "herald.bus.postgres:PostgresEventLog",
    "postgres": "herald.bus.postgres:PostgresEventLog",
    "postgresql+psycopg": "herald.bus.postgres:PostgresEventLog",
}
_IS_LOG = lambda cls: isinstance(cls, type) and issubclass(cls, EventLog)  # noqa: E731
EVENT_LOGS: Adapters[Callable[..., EventLog]] = Adapters(
    "event-log adapter", "herald.event_logs", BUILTIN, check=_IS_LOG
)
BUSES: Adapters[Callable[..., EventLog]] = Adapters(
    "bus adapter",
    "herald.buses",
    {"nats": "herald.bus.nats:NatsEventLog", "tls": "herald.bus.nats:NatsEventLog"},
    check=_IS_LOG,
    install_hint={"nats": 'pip install "herald[nats]"', "tls": 'pip install "herald[nats]"'},
)


def schemes() -> list[str]:
    return EVENT_LOGS.names()


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def open_event_log(url: str, bus_url: str | None = None, **options: Any) -> EventLog:
    """Create (not start) the event log for ``url``, carried over ``bus_url`` when given."""
    if bus_url:
        if _scheme(bus_url) not in BUSES:
            raise ConfigurationError(
                f"no bus adapter for {bus_url.split('?', 1)[0]!r} (HERALD_BUS_URL); "
                f"known schemes: {', '.join(BUSES.names())}"
            )
        return BUSES.load(_scheme(bus_url))(url, bus_url, **options)
    if _scheme(url) not in EVENT_LOGS:
        raise ConfigurationError(
            f"no event-log adapter for {url!r}; known schemes: {', '.join(schemes())}"
        )
    return EVENT_LOGS.load(_scheme(url))(url, **options)
