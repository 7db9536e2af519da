"""Event log on SQL databases through SQLAlchemy Core (shared by SQLite and PostgreSQL).

Writes go through one writer thread per process that drains every pending write into one
transaction (group commit, :mod:`herald.bus.sqlwriter`); rows convert to records in
:mod:`herald.bus.sqlrows`. Reads use pooled connections in worker threads. Dialect adapters
(``sqlite.py``, ``postgres.py``) supply locking and change notification.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from herald.bus import jobevents, jobstate
from herald.bus.base import (
    DeadLetter,
    EventLog,
    EventQuery,
    JobRecord,
    JobSpec,
    JobStatus,
    Lease,
    LeaseLost,
    LogLine,
    Outcome,
    PageKey,
    SensorState,
)
from herald.bus.sqlrows import (
    dead_letter_of,
    envelope_of,
    from_us,
    job_of,
    job_row,
    keyset_before,
    now_us,
    sensor_of,
    to_us,
)
from herald.bus.sqlwriter import Tx, Writer
from herald.errors import BackendError, Conflict, NotFound
from herald.messages.envelope import Envelope
from herald.store import schema
from herald.store.migrate import upgrade

log = logging.getLogger(__name__)
T = TypeVar("T")


class SQLEventLog(EventLog):
    """Base of the SQLite and PostgreSQL adapters."""

    dialect_name = "sql"

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._writer: Writer | None = None
        self._head = 0
        self._head_lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        compiled = insert(schema.events).compile(dialect=engine.dialect)
        self.sql_insert_event = str(compiled)
        # positional paramstyles (sqlite's qmark) take tuples in this order; named ones dicts
        self.insert_event_order: list[str] | None = (
            list(compiled.positiontup or []) if compiled.positional else None
        )
        self.sql_max_seq = str(
            select(func.max(schema.events.c.seq)).compile(dialect=engine.dialect)
        )

    # dialect hooks ----------------------------------------------------------------------------
    def lock_for_append(self, conn: Connection) -> None:
        """Serialise appends across processes so sequence order equals commit order."""

    def notify_in_tx(self, conn: Connection) -> None:
        """Tell other processes, on commit, that events were appended."""

    def insert_ignore(self, table: Any) -> Any:
        """An INSERT that does nothing on a primary-key conflict."""
        raise NotImplementedError

    def greatest(self, a: Any, b: Any) -> Any:
        """SQL expression for the larger of two values."""
        return func.greatest(a, b)

    # lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        def _migrate() -> int:
            with self.engine.begin() as conn:
                upgrade(conn)
            with self.engine.connect() as conn:
                return int(conn.execute(select(func.max(schema.events.c.seq))).scalar() or 0)

        try:
            self._head = await asyncio.to_thread(_migrate)
        except Exception as exc:
            raise BackendError(f"cannot open event log {self.safe_url}: {exc}") from exc
        self._writer = Writer(self)
        self._writer.start()

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None
        self.engine.dispose()

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def write_stats(self) -> tuple[int, int]:
        """(transactions, writes) committed so far; writes/transactions = group-commit factor."""
        w = self._writer
        return (w.batches, w.writes) if w else (0, 0)

    async def _write(self, fn: Callable[[Tx], T]) -> T:
        if self._writer is None:
            raise BackendError("event log is not started")
        return await self._writer.submit(fn)

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.engine.connect() as conn:
                return fn(conn)

        return await asyncio.to_thread(run)

    # change notification ----------------------------------------------------------------------
    def committed(self, head: int) -> None:
        """Called (from any thread) when events up to ``head`` are committed."""
        with self._head_lock:
            if head <= self._head:
                return
            self._head = head
            waiters = list(self._waiters)
        for loop, ev in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(ev.set)

    async def wait(self, after: int, timeout: float) -> int:
        if self._head > after:
            return self._head
        ev = asyncio.Event()
        entry = (asyncio.get_running_loop(), ev)
        with self._head_lock:
            self._waiters.append(entry)
        try:
            if self._head <= after:
                try:
                    await asyncio.wait_for(ev.wait(), timeout)
                except TimeoutError:
                    await self.refresh_head()
        finally:
            with self._head_lock:
                self._waiters.remove(entry)
        return self._head

    async def refresh_head(self) -> int:
        """Re-read the head from the database (picks up other processes' appends)."""
        head = await self._read(
            lambda c: int(c.execute(select(func.max(schema.events.c.seq))).scalar() or 0)
        )
        self.committed(head)
        return self._head

    # events -----------------------------------------------------------------------------------
    async def append(self, events: Sequence[Envelope]) -> list[Envelope]:
        try:
            return await self._write(lambda tx: tx.append(events))
        except Exception as exc:
            if "UNIQUE" in str(exc).upper() or "duplicate key" in str(exc):
                raise Conflict("an event with this id already exists") from exc
            raise

    async def read(
        self, after: int, limit: int = 500, types: Sequence[str] | None = None
    ) -> list[Envelope]:
        t = schema.events
        stmt = select(t).where(t.c.seq > after).order_by(t.c.seq).limit(limit)
        if types is not None:
            stmt = stmt.where(t.c.type.in_(list(types)))
        return await self._read(lambda c: [envelope_of(r) for r in c.execute(stmt)])

    async def query(self, q: EventQuery) -> list[Envelope]:
        t = schema.events
        stmt = select(t).where(t.c.seq > q.after)
        if q.types:
            stmt = stmt.where(t.c.type.in_(list(q.types)))
        if q.subject is not None:
            stmt = stmt.where(t.c.subject == q.subject)
        if q.correlationid is not None:
            stmt = stmt.where(t.c.correlationid == q.correlationid)
        if q.causationid is not None:
            stmt = stmt.where(t.c.causationid == q.causationid)
        if q.since is not None:
            stmt = stmt.where(t.c.time_us >= to_us(q.since))
        if q.until is not None:
            stmt = stmt.where(t.c.time_us < to_us(q.until))
        stmt = stmt.order_by(t.c.seq.desc() if q.descending else t.c.seq).limit(q.limit)
        return await self._read(lambda c: [envelope_of(r) for r in c.execute(stmt)])

    async def get(self, event_id: str) -> Envelope | None:
        stmt = select(schema.events).where(schema.events.c.id == event_id)
        return await self._read(lambda c: next((envelope_of(r) for r in c.execute(stmt)), None))

    async def head(self) -> int:
        return await self.refresh_head()

    # sensors ----------------------------------------------------------------------------------
    async def register_sensor(self, name: str, start: Literal["latest", "earliest"]) -> SensorState:
        def op(tx: Tx) -> SensorState:
            t = schema.sensors
            row = tx.conn.execute(select(t).where(t.c.name == name)).first()
            if row is None:
                cursor = 0
                if start == "latest":
                    cursor = int(
                        tx.conn.execute(select(func.max(schema.events.c.seq))).scalar() or 0
                    )
                tx.conn.execute(
                    self.insert_ignore(t).values(
                        name=name,
                        cursor=cursor,
                        enabled=True,
                        processed=0,
                        failed=0,
                        updated_us=now_us(),
                    )
                )
                row = tx.conn.execute(select(t).where(t.c.name == name)).one()
            return sensor_of(row)

        return await self._write(op)

    async def sensors(self) -> list[SensorState]:
        stmt = select(schema.sensors).order_by(schema.sensors.c.name)
        return await self._read(lambda c: [sensor_of(r) for r in c.execute(stmt)])

    async def set_sensor_enabled(self, name: str, enabled: bool) -> SensorState:
        def op(tx: Tx) -> SensorState:
            t = schema.sensors
            res = tx.conn.execute(
                update(t).where(t.c.name == name).values(enabled=enabled, updated_us=now_us())
            )
            if res.rowcount == 0:
                raise NotFound(f"no sensor named {name!r}")
            return sensor_of(tx.conn.execute(select(t).where(t.c.name == name)).one())

        state = await self._write(op)
        self.committed(self._head + 0)
        return state

    async def commit_many(self, outcomes: Sequence[Outcome]) -> list[list[Envelope] | None]:
        return await self._write(lambda tx: [self._commit(tx, o) for o in outcomes])

    def _commit(self, tx: Tx, o: Outcome) -> list[Envelope] | None:
        conn = tx.conn
        now = now_us()
        fresh = conn.execute(
            self.insert_ignore(schema.processed)
            .values(sensor=o.sensor, event_id=o.event_id, committed_us=now)
            .returning(schema.processed.c.sensor)
        ).first()
        if fresh is None and o.replay_of is None:
            return None
        events = list(o.emitted)
        job_rows = []
        for spec, cause in o.jobs:
            job = jobstate.new_job(spec, cause)
            req = jobevents.requested(job)
            job_rows.append(job_row(dataclasses.replace(job, requested_event=req.id)))
            events.append(req)
        stored = tx.append(events)
        if job_rows:
            conn.execute(insert(schema.jobs), job_rows)
        dl = o.dead_letter
        if dl is not None:
            d = schema.dead_letters
            conn.execute(delete(d).where(d.c.id == dl.id))
            conn.execute(
                insert(d).values(
                    id=dl.id,
                    sensor=dl.sensor,
                    event_id=dl.event_id,
                    event_seq=dl.event_seq,
                    event_type=dl.event_type,
                    error=dl.error,
                    attempts=dl.attempts,
                    status=dl.status,
                    created_us=to_us(dl.created_at),
                )
            )
        elif o.replay_of is not None:
            d = schema.dead_letters
            conn.execute(
                update(d).where(d.c.id == o.replay_of).values(status="replayed", replayed_us=now)
            )
        s = schema.sensors
        values: dict[str, Any] = {"updated_us": now}
        if dl is None:
            values["processed"] = s.c.processed + 1
        else:
            values["failed"] = s.c.failed + 1
        if o.advance_cursor:
            values["cursor"] = self.greatest(s.c.cursor, o.event_seq)
        conn.execute(update(s).where(s.c.name == o.sensor).values(**values))
        return stored

    async def advance_cursor(self, sensor: str, seq: int) -> None:
        def op(tx: Tx) -> None:
            s = schema.sensors
            tx.conn.execute(
                update(s)
                .where(s.c.name == sensor, s.c.cursor < seq)
                .values(cursor=seq, updated_us=now_us())
            )

        await self._write(op)

    # dead letters -----------------------------------------------------------------------------
    async def dead_letters(
        self,
        sensor: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        before: PageKey | None = None,
    ) -> list[DeadLetter]:
        d = schema.dead_letters
        stmt = select(d).order_by(d.c.created_us.desc(), d.c.id.desc())
        if sensor is not None:
            stmt = stmt.where(d.c.sensor == sensor)
        if status is not None:
            stmt = stmt.where(d.c.status == status)
        if before is not None:
            stmt = stmt.where(keyset_before(d.c.created_us, d.c.id, before))
        if limit is not None:
            stmt = stmt.limit(limit)
        return await self._read(lambda c: [dead_letter_of(r) for r in c.execute(stmt)])

    async def request_replay(self, dead_letter_id: str) -> DeadLetter:
        def op(tx: Tx) -> DeadLetter:
            d = schema.dead_letters
            row = tx.conn.execute(select(d).where(d.c.id == dead_letter_id)).first()
            if row is None:
                raise NotFound(f"no dead letter {dead_letter_id!r}")
            if row.status == "replayed":
                raise Conflict(f"dead letter {dead_letter_id!r} was already replayed")
            tx.conn.execute(
                update(d).where(d.c.id == dead_letter_id).values(status="replay_requested")
            )
            return dataclasses.replace(dead_letter_of(row), status="replay_requested")

        dl = await self._write(op)
        self.committed(self._head)
        for loop, ev in list(self._waiters):
            loop.call_soon_threadsafe(ev.set)
        return dl

    # jobs -------------------------------------------------------------------------------------
    async def submit_job(self, spec: JobSpec, cause: Envelope | None = None) -> JobRecord:
        def op(tx: Tx) -> JobRecord:
            job = jobstate.new_job(spec, cause)
            req = jobevents.requested(job)
            job = dataclasses.replace(job, requested_event=req.id)
            tx.append([req])
            tx.conn.execute(insert(schema.jobs).values(**job_row(job)))
            return job

        return await self._write(op)

    def _save(self, tx: Tx, job: JobRecord, token: str | None = None) -> None:
        j = schema.jobs
        stmt = update(j).where(j.c.id == job.id)
        if token is not None:
            stmt = stmt.where(j.c.lease_token == token, j.c.status == "running")
        row = job_row(job)
        row.pop("id")
        if tx.conn.execute(stmt.values(**row)).rowcount == 0:
            raise LeaseLost(f"job {job.id} is no longer leased with this token")

    def _load(self, conn: Connection, job_id: str) -> JobRecord:
        row = conn.execute(select(schema.jobs).where(schema.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return job_of(row)

    async def lease_job(
        self, worker: str, lease_s: float, executors: Sequence[str]
    ) -> Lease | None:
        def op(tx: Tx) -> Lease | None:
            j = schema.jobs
            now = datetime.now(UTC)
            events: list[Envelope] = []
            expired = tx.conn.execute(
                select(j)
                .where(j.c.status == "running", j.c.lease_expires_us < to_us(now))
                .with_for_update(skip_locked=True)
            ).all()
            for expired_row in expired:
                job, ev = jobstate.expire_lease(job_of(expired_row), now)
                self._save(tx, job)
                events.extend(ev)
            row = tx.conn.execute(
                select(j)
                .where(
                    j.c.status == "queued",
                    j.c.executor.in_(list(executors)),
                    or_(j.c.available_us.is_(None), j.c.available_us <= to_us(now)),
                )
                .order_by(j.c.created_us, j.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            lease = None
            if row is not None:
                job, lease = jobstate.lease_of(job_of(row), worker, lease_s, now)
                self._save(tx, job)
                events.append(lease.started_event)
            tx.append(events)
            return lease

        return await self._write(op)

    async def heartbeat(
        self, job_id: str, token: str, lease_s: float, events: Sequence[Envelope] = ()
    ) -> JobRecord:
        def op(tx: Tx) -> JobRecord:
            job = self._load(tx.conn, job_id)
            if job.lease_token != token or job.status != "running":
                raise LeaseLost(f"job {job_id} is no longer leased with this token")
            job = jobstate.heartbeat(job, lease_s, events)
            self._save(tx, job, token)
            tx.append(events)
            return job

        return await self._write(op)

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
        def op(tx: Tx) -> JobRecord:
            job = self._load(tx.conn, job_id)
            if job.lease_token != token or job.status != "running":
                raise LeaseLost(f"job {job_id} is no longer leased with this token")
            job = jobstate.finished(
                job, status, result=result, error=error, retry_at=retry_at, events=events
            )
            self._save(tx, job, token)
            tx.append(events)
            return job

        return await self._write(op)

    async def cancel_job(self, job_id: str, reason: str = "cancelled by user") -> JobRecord:
        def op(tx: Tx) -> JobRecord:
            job, events = jobstate.cancel(self._load(tx.conn, job_id), reason)
            self._save(tx, job)
            tx.append(events)
            return job

        return await self._write(op)

    async def retry_job(self, job_id: str) -> JobRecord:
        def op(tx: Tx) -> JobRecord:
            job = jobstate.retried(self._load(tx.conn, job_id))
            self._save(tx, job)
            return job

        job = await self._write(op)
        self.committed(self._head)
        for loop, ev in list(self._waiters):
            loop.call_soon_threadsafe(ev.set)
        return job

    async def get_job(self, job_id: str) -> JobRecord | None:
        stmt = select(schema.jobs).where(schema.jobs.c.id == job_id)
        return await self._read(lambda c: next((job_of(r) for r in c.execute(stmt)), None))

    async def jobs(
        self,
        status: str | None = None,
        name: str | None = None,
        limit: int = 100,
        correlationid: str | None = None,
        before: PageKey | None = None,
    ) -> list[JobRecord]:
        j = schema.jobs
        conds = []
        if status is not None:
            conds.append(j.c.status == status)
        if name is not None:
            conds.append(j.c.name == name)
        if correlationid is not None:
            conds.append(j.c.correlationid == correlationid)
        if before is not None:
            conds.append(keyset_before(j.c.created_us, j.c.id, before))
        stmt = (
            select(j)
            .where(and_(True, *conds))
            .order_by(j.c.created_us.desc(), j.c.id.desc())
            .limit(limit)
        )
        return await self._read(lambda c: [job_of(r) for r in c.execute(stmt)])

    async def append_logs(self, job_id: str, lines: Sequence[tuple[str, str]]) -> None:
        if not lines:
            return

        def op(tx: Tx) -> None:
            self._load(tx.conn, job_id)
            t = schema.job_logs
            last = (
                tx.conn.execute(select(func.max(t.c.seq)).where(t.c.job_id == job_id)).scalar() or 0
            )
            now = now_us()
            tx.conn.execute(
                insert(t),
                [
                    {
                        "job_id": job_id,
                        "seq": last + i + 1,
                        "time_us": now,
                        "stream": s,
                        "line": line,
                    }
                    for i, (s, line) in enumerate(lines)
                ],
            )

        await self._write(op)

    async def logs(self, job_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        t = schema.job_logs

        def run(c: Connection) -> list[LogLine]:
            self._load(c, job_id)
            rows = c.execute(
                select(t)
                .where(t.c.job_id == job_id, t.c.seq > after)
                .order_by(t.c.seq)
                .limit(limit)
            )
            return [
                LogLine(
                    seq=r.seq,
                    time=from_us(r.time_us) or datetime.now(UTC),
                    stream=r.stream,
                    line=r.line,
                )
                for r in rows
            ]

        return await self._read(run)
