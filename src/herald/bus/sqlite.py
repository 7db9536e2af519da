"""SQLite event log: the embedded default (WAL, ``synchronous=FULL``, group commit)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

from herald.bus.sql import SQLEventLog
from herald.errors import ConfigurationError


class SQLiteEventLog(SQLEventLog):
    """``sqlite:///path/to/herald.db`` (relative or absolute path)."""

    dialect_name = "sqlite"

    def __init__(self, url: str, *, synchronous: str = "FULL") -> None:
        parsed = make_url(url)
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigurationError(
                "the SQLite event log needs a file path, e.g. sqlite:///~/.herald/herald.db; "
                "use memory:// for a throw-away log"
            )
        path = Path(parsed.database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed.set(database=str(path)),
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=8,
        )
        sync = synchronous.upper()
        if sync not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigurationError(f"unknown SQLite synchronous mode {synchronous!r}")

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (savepoints work)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        super().__init__(url, engine)
        self.path = path
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    async def start(self) -> None:
        await super().start()
        self._stop.clear()
        self._watcher = threading.Thread(
            target=self._watch, name="herald-sqlite-watch", daemon=True
        )
        self._watcher.start()

    async def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.join, 5)
            self._watcher = None
        await super().close()

    def _watch(self, interval: float = 0.01) -> None:
        """Notice commits by other processes (``PRAGMA data_version``) within ~10 ms."""
        conn = sqlite3.connect(self.path, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=1000")
            last = conn.execute("PRAGMA data_version").fetchone()[0]
            while not self._stop.wait(interval):
                try:
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if version != last:
                        last = version
                        row = conn.execute("SELECT max(seq) FROM herald_events").fetchone()
                        self.committed(int(row[0] or 0))
                except sqlite3.Error:
                    continue
        finally:
            conn.close()

    def insert_ignore(self, table: Any) -> Any:
        return sqlite_insert(table).on_conflict_do_nothing()

    def greatest(self, a: Any, b: Any) -> Any:
        return func.max(a, b)
