"""The SQL event log's writer: one thread per process drains every pending write into one
transaction (group commit: one fsync for a burst); a failing write is re-run alone inside its own
SAVEPOINT so it does not undo the others."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection

from herald.bus.sqlrows import event_row
from herald.errors import BackendError
from herald.messages.envelope import Envelope

if TYPE_CHECKING:
    from herald.bus.sql import SQLEventLog

log = logging.getLogger("herald.bus.sql")
T = TypeVar("T")


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
            rows: list[Any] = [event_row(e, e.seq or 0) for e in out]
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


class Writer(threading.Thread):
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
            loop.call_soon_threadsafe(resolve_future, fut, value, error)
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


def resolve_future(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
