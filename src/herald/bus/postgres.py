"""PostgreSQL event log: LISTEN/NOTIFY push, advisory-locked appends, SKIP LOCKED job leases."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url

from herald.bus.sql import SQLEventLog
from herald.errors import BackendUnavailable

log = logging.getLogger(__name__)

CHANNEL = "herald_events"
APPEND_LOCK = 0x4E52414C44  # any constant shared by every Herald process on this database


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
        self._stop.set()
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5)
            self._listener = None
        await super().close()

    def _listen(self) -> None:
        """Wake local waiters when any process commits events (LISTEN/NOTIFY)."""
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
                            self.committed(int(row[0] or 0) if row else 0)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("LISTEN connection lost (%s); reconnecting", exc)
                self._stop.wait(1.0)
