"""The event-log port: durable, totally ordered events plus the sensor and job state that must
commit in the same transaction as the events they produce (transactional outbox).

Every adapter (memory, sqlite, postgresql) implements :class:`EventLog` and passes the one
contract suite in ``tests/contract``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from herald.messages.envelope import Envelope

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

PageKey = tuple[int, str]
"""A row's place in a newest-first listing: (created time in µs since the epoch, id)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def page_key(created_at: datetime, row_id: str) -> PageKey:
    """The keyset position of a job or dead letter (exact integer µs, no float rounding).

    Listings are ordered by this key descending; ``before=page_key(last_row)`` asks for the
    rows after ``last_row``. Rows inserted meanwhile are newer, so they never shift a page.
    """
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return ((created_at - _EPOCH) // timedelta(microseconds=1), row_id)


@dataclass(frozen=True)
class EventQuery:
    """Filters for :meth:`EventLog.query`; all given filters must match."""

    types: Sequence[str] | None = None
    subject: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100
    descending: bool = False


@dataclass(frozen=True)
class JobSpec:
    """A job request as a sensor or user makes it."""

    id: str
    name: str
    params: dict[str, Any]
    executor: str
    max_attempts: int = 3
    timeout_s: float | None = None
    sensor: str | None = None
    run_key: str | None = None


@dataclass(frozen=True)
class JobRecord:
    id: str
    name: str
    params: dict[str, Any]
    executor: str
    status: JobStatus
    attempt: int
    max_attempts: int
    created_at: datetime
    updated_at: datetime
    correlationid: str
    causationid: str | None
    sensor: str | None = None
    timeout_s: float | None = None
    requested_event: str | None = None
    started_event: str | None = None
    worker: str | None = None
    lease_token: str | None = None
    lease_expires_at: datetime | None = None
    available_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float | None = None
    progress_message: str | None = None
    result: Any = None
    error: str | None = None
    cancel_requested: bool = False


@dataclass(frozen=True)
class Lease:
    """A job leased to one worker; ``token`` fences off results from older leases."""

    job: JobRecord
    token: str
    started_event: Envelope


@dataclass(frozen=True)
class SensorState:
    name: str
    cursor: int
    enabled: bool
    updated_at: datetime
    processed: int = 0
    failed: int = 0


@dataclass(frozen=True)
class DeadLetter:
    id: str
    sensor: str
    event_id: str
    event_seq: int
    event_type: str
    error: str
    attempts: int
    created_at: datetime
    status: Literal["dead", "replay_requested", "replayed"] = "dead"
    replayed_at: datetime | None = None


@dataclass
class Outcome:
    """What a sensor produced for one event, committed atomically.

    If ``(sensor, event_id)`` was already committed, nothing is written (effectively-once).
    """

    sensor: str
    event_id: str
    event_seq: int
    emitted: list[Envelope] = field(default_factory=list)
    jobs: list[tuple[JobSpec, Envelope]] = field(default_factory=list)
    dead_letter: DeadLetter | None = None
    replay_of: str | None = None
    advance_cursor: bool = True


@dataclass(frozen=True)
class LogLine:
    seq: int
    time: datetime
    stream: str
    line: str


class LeaseLost(Exception):
    """The lease token is no longer current: another worker owns the job, or it finished."""


class EventLog(abc.ABC):
    """Durable event log with sensor cursors, dedupe, dead letters and the job queue."""

    url: str

    # lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open connections and apply migrations."""

    async def close(self) -> None:
        """Release connections."""

    # events ---------------------------------------------------------------------------------
    @abc.abstractmethod
    async def append(self, events: Sequence[Envelope]) -> list[Envelope]:
        """Durably append events atomically; returns them with ``seq`` assigned."""

    @abc.abstractmethod
    async def read(
        self, after: int, limit: int = 500, types: Sequence[str] | None = None
    ) -> list[Envelope]:
        """Events with ``seq > after`` in order, optionally only of ``types``."""

    @abc.abstractmethod
    async def query(self, q: EventQuery) -> list[Envelope]:
        """Events matching the filters."""

    @abc.abstractmethod
    async def get(self, event_id: str) -> Envelope | None:
        """One event by id."""

    @abc.abstractmethod
    async def head(self) -> int:
        """The highest committed sequence number (0 when empty)."""

    @abc.abstractmethod
    async def wait(self, after: int, timeout: float) -> int:
        """Return the head as soon as it is past ``after`` (push), or after ``timeout``."""

    # sensor ownership ----------------------------------------------------------------------
    async def try_own(self, sensor: str) -> bool:
        """Become, or confirm still being, the one process that runs ``sensor``.

        Several workers on one database call this periodically; at most one gets ``True`` per
        sensor at a time. Ownership ends with :meth:`release`, :meth:`close` or the death of the
        process (the database or the OS frees it), after which another caller gets it. The
        default (one process per log, e.g. memory) always owns every sensor.
        """
        return True

    async def release(self, sensor: str) -> None:
        """Give up ownership of ``sensor`` (no-op if not owned)."""

    async def owners(self) -> int:
        """How many live processes share sensor ownership on this log right now.

        Runners use it to take a fair share of the sensors (``ceil(sensors / owners)``) and hand
        the rest to the others. The default (a log only one process can own) is 1.
        """
        return 1

    # sensors --------------------------------------------------------------------------------
    @abc.abstractmethod
    async def register_sensor(self, name: str, start: Literal["latest", "earliest"]) -> SensorState:
        """Create the sensor's durable state if missing (cursor at head or 0)."""

    @abc.abstractmethod
    async def sensors(self) -> list[SensorState]:
        """All sensor states."""

    @abc.abstractmethod
    async def set_sensor_enabled(self, name: str, enabled: bool) -> SensorState:
        """Enable or disable a sensor."""

    async def commit(self, outcome: Outcome) -> list[Envelope] | None:
        """Commit a sensor outcome atomically; ``None`` if it was already committed."""
        return (await self.commit_many([outcome]))[0]

    @abc.abstractmethod
    async def commit_many(self, outcomes: Sequence[Outcome]) -> list[list[Envelope] | None]:
        """Commit several outcomes in one transaction (all or nothing), in order."""

    @abc.abstractmethod
    async def advance_cursor(self, sensor: str, seq: int) -> None:
        """Move a sensor's cursor forward (never backwards) past skipped events."""

    # dead letters ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def dead_letters(
        self,
        sensor: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        before: PageKey | None = None,
    ) -> list[DeadLetter]:
        """Dead-letter records, newest first by :func:`page_key` (all when ``limit`` is None);
        ``before`` skips to the rows after that key (keyset paging)."""

    @abc.abstractmethod
    async def request_replay(self, dead_letter_id: str) -> DeadLetter:
        """Mark a dead letter for replay by its sensor."""

    # jobs -----------------------------------------------------------------------------------
    @abc.abstractmethod
    async def submit_job(self, spec: JobSpec, cause: Envelope | None = None) -> JobRecord:
        """Queue a job outside a sensor (API or CLI), with its ``job.requested`` event;
        without a stored ``cause`` the job starts a new flow."""

    @abc.abstractmethod
    async def lease_job(
        self, worker: str, lease_s: float, executors: Sequence[str]
    ) -> Lease | None:
        """Requeue jobs whose lease expired, then lease the oldest runnable job."""

    @abc.abstractmethod
    async def heartbeat(
        self, job_id: str, token: str, lease_s: float, events: Sequence[Envelope] = ()
    ) -> JobRecord:
        """Extend a lease (raises :class:`LeaseLost`) and append the job's live events;
        a ``job.progressed`` event among them updates the job's progress fields."""

    @abc.abstractmethod
    async def finish_job(
        self,
        job_id: str,
        token: str,
        status: JobStatus,
        events: Sequence[Envelope],
        *,
        result: Any = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> JobRecord:
        """Record a fenced result (raises :class:`LeaseLost`); ``retry_at`` requeues instead."""

    @abc.abstractmethod
    async def cancel_job(self, job_id: str, reason: str = "cancelled by user") -> JobRecord:
        """Cancel a queued job now, or flag a running one for its worker to stop."""

    @abc.abstractmethod
    async def retry_job(self, job_id: str) -> JobRecord:
        """Queue a failed or cancelled job again."""

    @abc.abstractmethod
    async def get_job(self, job_id: str) -> JobRecord | None:
        """One job by id."""

    @abc.abstractmethod
    async def jobs(
        self,
        status: str | None = None,
        name: str | None = None,
        limit: int = 100,
        correlationid: str | None = None,
        before: PageKey | None = None,
    ) -> list[JobRecord]:
        """Jobs, newest first by :func:`page_key`; ``before`` skips to the jobs after that key
        (keyset paging: stable under concurrent inserts, no OFFSET)."""

    @abc.abstractmethod
    async def append_logs(self, job_id: str, lines: Sequence[tuple[str, str]]) -> None:
        """Append (stream, line) log lines to a job."""

    @abc.abstractmethod
    async def logs(self, job_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        """A job's log lines after ``after``."""
