"""Event log on SQL databases through SQLAlchemy Core (shared by SQLite and PostgreSQL).

Writes go through one writer thread per process that drains every pending write into one
transaction (group commit: one fsync for a burst), each write inside its own SAVEPOINT so one
failing write does not undo the others. Reads use pooled connections in worker threads.
Dialect adapters (``sqlite.py``, ``postgres.py``) supply locking and change notification.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row

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
from herald.errors import BackendError, Conflict, NotFound
from herald.messages.envelope import Envelope
from herald.store import schema
from herald.store.migrate import upgrade

log = logging.getLogger(__name__)
T = TypeVar("T")


def to_us(t: datetime | None) -> int | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1_000_000)


def from_us(us: int | None) -> datetime | None:
    if us is None:
        return None
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def _event_row(e: Envelope, seq: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "id": e.id,
        "type": e.type,
        "source": e.source,
        "subject": e.subject,
        "time_us": to_us(e.time),
        "correlationid": e.correlationid,
        "causationid": e.causationid,
        "schemaversion": e.schemaversion,
        "datacontenttype": e.datacontenttype,
        "dataschema": e.dataschema,
        "data": json.dumps(e.data, separators=(",", ":")),
    }


def _envelope(r: Row[Any]) -> Envelope:
    return Envelope.model_construct(
        specversion="1.0",
        id=r.id,
        source=r.source,
        type=r.type,
        subject=r.subject,
        time=from_us(r.time_us) or datetime.now(UTC),
        datacontenttype=r.datacontenttype,
        dataschema=r.dataschema,
        correlationid=r.correlationid,
        causationid=r.causationid,
        schemaversion=r.schemaversion,
        seq=r.seq,
        data=json.loads(r.data),
    )


_JOB_TIMES = {
    "created_at": "created_us",
    "updated_at": "updated_us",
    "lease_expires_at": "lease_expires_us",
    "available_at": "available_us",
    "started_at": "started_us",
    "finished_at": "finished_us",
}


def _job_row(j: JobRecord) -> dict[str, Any]:
    row = dataclasses.asdict(j)
    for attr, col in _JOB_TIMES.items():
        row[col] = to_us(row.pop(attr))
    row["params"] = json.dumps(j.params)
    row["result"] = None if j.result is None else json.dumps(j.result)
    return row


def _job(r: Row[Any]) -> JobRecord:
    m = dict(r._mapping)
    for attr, col in _JOB_TIMES.items():
        m[attr] = from_us(m.pop(col))
    m["params"] = json.loads(m["params"])
    m["result"] = None if m["result"] is None else json.loads(m["result"])
    return JobRecord(**m)


def _sensor(r: Row[Any]) -> SensorState:
    return SensorState(
        name=r.name,
        cursor=r.cursor,
        enabled=bool(r.enabled),
        processed=r.processed,
        failed=r.failed,
        updated_at=from_us(r.updated_us) or datetime.now(UTC),
    )


def _before(created: Any, row_id: Any, key: PageKey) -> Any:
    """Rows after ``key`` in (created_us, id) descending order — the keyset condition."""
    us, kid = key
    # the redundant ``created <= us`` is what lets the created_us index start the scan at the
    # cursor (an OR alone makes the database walk every newer row first: O(depth), not O(page))
    return and_(created <= us, or_(created < us, row_id < kid))


def _dead(r: Row[Any]) -> DeadLetter:
    return DeadLetter(
        id=r.id,
        sensor=r.sensor,
        event_id=r.event_id,
        event_seq=r.event_seq,
        event_type=r.event_type,
        error=r.error,
        attempts=r.attempts,
        status=r.status,
        created_at=from_us(r.created_us) or datetime.now(UTC),
        replayed_at=from_us(r.replayed_us),
    )


class Tx:
    """One write transaction: assigns sequence numbers to appended events."""

    def __init__(self, conn: Connection, owner: SQLEventLog) -> None:
        self.conn = conn
        self.owner = owner
        self.next_seq: int | None = None

    def append(self, events: Sequence[Envelope]) -> list[Envelope]:
        if not events:
            return []
        # The hot path of every write: plain DB-API calls with SQL compiled once per dialect
        # (SQLAlchemy's per-statement overhead was most of an append's cost).
        cursor = self.conn.connection.cursor()
        try:
            if self.next_seq is None:
                self.owner.lock_for_append(self.conn)
                cursor.execute(self.owner.sql_max_seq)
                row = cursor.fetchone()
                self.next_seq = (row[0] if row and row[0] is not None else 0) + 1
            out = [e.with_seq(self.next_seq + i) for i, e in enumerate(events)]
            rows: list[Any] = [_event_row(e, e.seq or 0) for e in out]
            order = self.owner.insert_event_order
            if order is not None:
                rows = [tuple(r[k] for k in order) for r in rows]
            if len(rows) == 1:
                cursor.execute(self.owner.sql_insert_event, rows[0])
            else:
                cursor.executemany(self.owner.sql_insert_event, rows)
        finally:
            cursor.close()
        self.next_seq += len(out)
        return out


class _Writer(threading.Thread):
    """Drains queued writes into shared transactions (group commit)."""

    def __init__(self, owner: SQLEventLog, max_batch: int = 512) -> None:
        super().__init__(name=f"herald-writer-{owner.dialect_name}", daemon=True)
        self.owner = owner
        self.max_batch = max_batch
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.batches = 0
        self.writes = 0

    def submit(self, fn: Callable[[Tx], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self.q.put((fn, loop, fut))
        return fut

    def stop(self) -> None:
        self.q.put(None)
        self.join(timeout=10)

    def run(self) -> None:
        conn = self.owner.engine.connect()
        try:
            while True:
                item = self.q.get()
                if item is None:
                    return
                batch = [item]
                stop = False
                while len(batch) < self.max_batch:
                    try:
                        nxt = self.q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                conn = self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: Connection, batch: list[Any]) -> Connection:
        """Commit a batch of writes in one transaction.

        Fast path: every write in one transaction, no savepoints. If a write raises, the
        transaction is rolled back and the batch re-run with a savepoint per write, so each
        write fails alone (writes are functions of the database state: re-running is safe).
        """
        results: list[tuple[Any, BaseException | None]]
        head: int | None
        try:
            try:
                results, head = self._attempt(conn, batch, isolated=False)
            except _WriteFailed as failed:
                if len(batch) == 1:
                    results, head = [(None, failed.exc)], None
                else:
                    results, head = self._attempt(conn, batch, isolated=True)
        except Exception as exc:  # the commit itself failed: every write in it failed
            log.exception("event log commit failed")
            err = BackendError(f"database commit failed: {exc}")
            results, head = [(None, err) for _ in batch], None
            try:
                conn.close()
            finally:
                conn = self.owner.engine.connect()
        self.batches += 1
        self.writes += len(batch)
        for (_fn, loop, fut), (value, error) in zip(batch, results, strict=True):
            loop.call_soon_threadsafe(_resolve, fut, value, error)
        if head is not None:
            self.owner.committed(head)
        return conn

    def _attempt(
        self, conn: Connection, batch: list[Any], *, isolated: bool
    ) -> tuple[list[tuple[Any, BaseException | None]], int | None]:
        results: list[tuple[Any, BaseException | None]] = []
        head = None
        with conn.begin():
            tx = Tx(conn, self.owner)
            for fn, _loop, _fut in batch:
                if not isolated:
                    try:
                        results.append((fn(tx), None))
                    except Exception as exc:
                        raise _WriteFailed(exc) from exc
                    continue
                saved = tx.next_seq
                sp = conn.begin_nested()
                try:
                    value = fn(tx)
                    sp.commit()
                    results.append((value, None))
                except Exception as exc:  # each write fails alone
                    sp.rollback()
                    tx.next_seq = saved
                    results.append((None, exc))
            if tx.next_seq is not None:
                head = tx.next_seq - 1
                self.owner.notify_in_tx(conn)
        return results, head


class _WriteFailed(Exception):
    """A write raised in the fast path (its transaction is rolled back)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.exc = exc


def _resolve(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


class SQLEventLog(EventLog):
    """Base of the SQLite and PostgreSQL adapters."""

    dialect_name = "sql"

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self._writer: _Writer | None = None
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
        self._writer = _Writer(self)
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
        return await self._read(lambda c: [_envelope(r) for r in c.execute(stmt)])

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
        return await self._read(lambda c: [_envelope(r) for r in c.execute(stmt)])

    async def get(self, event_id: str) -> Envelope | None:
        stmt = select(schema.events).where(schema.events.c.id == event_id)
        return await self._read(lambda c: next((_envelope(r) for r in c.execute(stmt)), None))

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
            return _sensor(row)

        return await self._write(op)

    async def sensors(self) -> list[SensorState]:
        stmt = select(schema.sensors).order_by(schema.sensors.c.name)
        return await self._read(lambda c: [_sensor(r) for r in c.execute(stmt)])

    async def set_sensor_enabled(self, name: str, enabled: bool) -> SensorState:
        def op(tx: Tx) -> SensorState:
            t = schema.sensors
            res = tx.conn.execute(
                update(t).where(t.c.name == name).values(enabled=enabled, updated_us=now_us())
            )
            if res.rowcount == 0:
                raise NotFound(f"no sensor named {name!r}")
            return _sensor(tx.conn.execute(select(t).where(t.c.name == name)).one())

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
            job_rows.append(_job_row(dataclasses.replace(job, requested_event=req.id)))
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
            stmt = stmt.where(_before(d.c.created_us, d.c.id, before))
        if limit is not None:
            stmt = stmt.limit(limit)
        return await self._read(lambda c: [_dead(r) for r in c.execute(stmt)])

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
            return dataclasses.replace(_dead(row), status="replay_requested")

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
            tx.conn.execute(insert(schema.jobs).values(**_job_row(job)))
            return job

        return await self._write(op)

    def _save(self, tx: Tx, job: JobRecord, token: str | None = None) -> None:
        j = schema.jobs
        stmt = update(j).where(j.c.id == job.id)
        if token is not None:
            stmt = stmt.where(j.c.lease_token == token, j.c.status == "running")
        row = _job_row(job)
        row.pop("id")
        if tx.conn.execute(stmt.values(**row)).rowcount == 0:
            raise LeaseLost(f"job {job.id} is no longer leased with this token")

    def _load(self, conn: Connection, job_id: str) -> JobRecord:
        row = conn.execute(select(schema.jobs).where(schema.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return _job(row)

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
                job, ev = jobstate.expire_lease(_job(expired_row), now)
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
                job, lease = jobstate.lease_of(_job(row), worker, lease_s, now)
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
        return await self._read(lambda c: next((_job(r) for r in c.execute(stmt)), None))

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
            conds.append(_before(j.c.created_us, j.c.id, before))
        stmt = (
            select(j)
            .where(and_(True, *conds))
            .order_by(j.c.created_us.desc(), j.c.id.desc())
            .limit(limit)
        )
        return await self._read(lambda c: [_job(r) for r in c.execute(stmt)])

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
