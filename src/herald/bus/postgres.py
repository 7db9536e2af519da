"""PostgreSQL event log: LISTEN/NOTIFY push, advisory-locked appends, SKIP LOCKED job leases."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import threading
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url

from herald.bus.sql import SQLEventLog
from herald.errors import BackendError, BackendUnavailable

log = logging.getLogger(__name__)

CHANNEL = "herald_events"
APPEND_LOCK = 0x4E52414C44  # any constant shared by every Herald process on this database
SENSOR_LOCK_SPACE = 0x48534E53  # first key of the two-key advisory locks owning sensors
PRESENCE_LOCK_SPACE = 0x48525052  # one lock per live sensor-owning process (EventLog.owners)


def sensor_lock_key(sensor: str) -> int:
    """A stable signed 32-bit key per sensor name (same in every process and version)."""
    digest = hashlib.blake2b(f"herald-sensor:{sensor}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresEventLog(SQLEventLog):
    """``postgresql://user:pass@host:port/db`` (psycopg 3)."""

    dialect_name = "postgresql"

    def __init__(self, url: str) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendUnavailable(
                'the PostgreSQL event log needs psycopg: pip install "herald[postgres]"'
            ) from exc
        parsed = make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_size=8, max_overflow=8, pool_pre_ping=True)
        super().__init__(url, engine)
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._owner_conn: Any = None  # psycopg.Connection holding the sensor advisory locks
        self._owned: set[str] = set()
        self._owner_lock = threading.Lock()

    def lock_for_append(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK})

    def notify_in_tx(self, conn: Connection) -> None:
        conn.execute(text(f"NOTIFY {CHANNEL}"))

    def insert_ignore(self, table: Any) -> Any:
        return pg_insert(table).on_conflict_do_nothing()

    async def start(self) -> None:
        await super().start()
        self._stop.clear()
        self._listener = threading.Thread(target=self._listen, name="herald-pg-listen", daemon=True)
        self._listener.start()

    async def close(self) -> None:
        await asyncio.to_thread(self._drop_owner_conn)
        self._stop.set()
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5)
            self._listener = None
        await super().close()

    def _notified(self, head: int) -> None:
        """Some process committed events up to ``head`` (LISTEN/NOTIFY): wake local waiters."""
        self.committed(head)

    def _listen(self) -> None:
        """Follow every process's commits (LISTEN/NOTIFY), reconnecting for ever."""
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        got = False
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            got = True
                        if got:
                            row = conn.execute("SELECT max(seq) FROM herald_events").fetchone()
                            self._notified(int(row[0] or 0) if row else 0)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("LISTEN connection lost (%s); reconnecting", exc)
                self._stop.wait(1.0)

    # sensor ownership: session-level advisory locks on one dedicated connection --------------
    async def try_own(self, sensor: str) -> bool:
        return await asyncio.to_thread(self._try_own, sensor)

    async def release(self, sensor: str) -> None:
        await asyncio.to_thread(self._release, sensor)

    def _try_own(self, sensor: str) -> bool:
        import psycopg

        key = sensor_lock_key(sensor)
        with self._owner_lock:
            conn = self._owner_conn
            if conn is not None:
                try:
                    if sensor in self._owned:
                        # session locks are re-entrant: never take one twice, only check that
                        # the session (and with it the lock) is still alive
                        conn.execute("SELECT 1")
                        return True
                except psycopg.Error as exc:
                    log.warning("sensor ownership connection lost (%s); reconnecting", exc)
                    self._drop_owner_conn_locked()
                    conn = None
            if conn is None:
                conn = self._connect_owner_locked()
            try:
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s::int4, %s::int4)", (SENSOR_LOCK_SPACE, key)
                ).fetchone()
            except psycopg.Error as exc:
                self._drop_owner_conn_locked()
                raise BackendError(f"cannot take the lock of sensor {sensor!r}: {exc}") from exc
            got = bool(row and row[0])
            if got:
                self._owned.add(sensor)
            return got

    def _connect_owner_locked(self) -> Any:
        """Open the ownership session and mark this process present (a presence lock)."""
        import psycopg

        self._owned.clear()
        try:
            conn = psycopg.connect(
                self._dsn, autocommit=True, application_name="herald-sensor-owner"
            )
            while True:  # a random key; retry in the unlikely case another process has it
                key = secrets.randbits(31)
                row = conn.execute(
                    "SELECT pg_try_advisory_lock(%s::int4, %s::int4)", (PRESENCE_LOCK_SPACE, key)
                ).fetchone()
                if row and row[0]:
                    break
        except psycopg.Error as exc:
            raise BackendError(
                f"cannot reach PostgreSQL at {self.safe_url} to own sensors: {exc}"
            ) from exc
        self._owner_conn = conn
        return conn

    async def owners(self) -> int:
        return await asyncio.to_thread(self._owners)

    def _owners(self) -> int:
        import psycopg

        with self._owner_lock:
            try:
                conn = self._owner_conn or self._connect_owner_locked()
                row = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = %s::oid AND objsubid = 2",
                    (PRESENCE_LOCK_SPACE,),
                ).fetchone()
            except psycopg.Error as exc:
                self._drop_owner_conn_locked()
                raise BackendError(f"cannot count the live workers: {exc}") from exc
        return max(1, int(row[0]) if row else 1)

    def _release(self, sensor: str) -> None:
        import psycopg

        with self._owner_lock:
            if sensor not in self._owned or self._owner_conn is None:
                return
            self._owned.discard(sensor)
            try:
                self._owner_conn.execute(
                    "SELECT pg_advisory_unlock(%s::int4, %s::int4)",
                    (SENSOR_LOCK_SPACE, sensor_lock_key(sensor)),
                )
            except psycopg.Error:  # the session is gone, and with it the lock
                self._drop_owner_conn_locked()

    def _drop_owner_conn(self) -> None:
        with self._owner_lock:
            self._drop_owner_conn_locked()

    def _drop_owner_conn_locked(self) -> None:
        conn, self._owner_conn = self._owner_conn, None
        self._owned.clear()
        if conn is not None:
            try:
                conn.close()  # ends the session: PostgreSQL frees every lock it held
            except Exception:
                log.debug("closing the sensor ownership connection failed", exc_info=True)
