"""The event-log port and its adapters (memory, SQLite, PostgreSQL)."""

from herald.bus.base import (
    DeadLetter,
    EventLog,
    EventQuery,
    JobRecord,
    JobSpec,
    Lease,
    LeaseLost,
    LogLine,
    Outcome,
    SensorState,
)
from herald.bus.registry import open_event_log

__all__ = [
    "DeadLetter",
    "EventLog",
    "EventQuery",
    "JobRecord",
    "JobSpec",
    "Lease",
    "LeaseLost",
    "LogLine",
    "Outcome",
    "SensorState",
    "open_event_log",
]
