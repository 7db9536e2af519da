"""SQLite event log: the embedded default (WAL, ``synchronous=FULL``, group commit)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
import threading
import uuid
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
        self._owned: dict[str, int] = {}  # sensor -> file descriptor holding its flock
        self._owner_lock = threading.Lock()
        self._presence: tuple[int, Path] | None = None  # this process's flock in owners/

    @property
    def lock_dir(self) -> Path:
        """Where the per-sensor ownership lock files live: beside the database file."""
        return self.path.with_name(self.path.name + ".locks")

    async def start(self) -> None:
        await super().start()
        self._stop.clear()
        self._watcher = threading.Thread(
            target=self._watch, name="herald-sqlite-watch", daemon=True
        )
        self._watcher.start()

    async def close(self) -> None:
        for sensor in list(self._owned):
            await self.release(sensor)
        await asyncio.to_thread(self._leave_owners)
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

    # sensor ownership: one exclusive flock per sensor, freed by the OS when the process dies --
    def _lock_path(self, sensor: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", sensor)[:80]
        digest = hashlib.blake2b(sensor.encode(), digest_size=6).hexdigest()
        return self.lock_dir / f"{safe}-{digest}.lock"

    async def try_own(self, sensor: str) -> bool:
        return await asyncio.to_thread(self._try_own, sensor)

    async def release(self, sensor: str) -> None:
        await asyncio.to_thread(self._release, sensor)

    def _try_own(self, sensor: str) -> bool:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one worker per database file
            return True
        with self._owner_lock:
            self._join_owners()  # taking part, owning or not (as PostgreSQL's presence lock)
            if sensor in self._owned:
                return True
            path = self._lock_path(sensor)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot create the sensor lock file {path}: {exc}; check that the directory "
                    "beside the database is writable"
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError:
                os.close(fd)
                raise
            self._owned[sensor] = fd
            return True

    def _release(self, sensor: str) -> None:
        with self._owner_lock:
            fd = self._owned.pop(sensor, None)
            if fd is not None:
                os.close(fd)  # closing the only descriptor frees the flock

    # live owners: each process taking part in ownership (try_own or owners called) holds an
    # exclusive flock on a presence file of its own in <lock_dir>/owners; the OS frees it when
    # the process dies
    async def owners(self) -> int:
        return await asyncio.to_thread(self._owners)

    def _join_owners(self) -> None:
        """Announce this process (called under ``_owner_lock``, where fcntl exists)."""
        import fcntl

        if self._presence is not None:
            return
        folder = self.lock_dir / "owners"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        tmp = folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = folder / f"{name}.lock"
        os.rename(tmp, path)  # appears already locked: a counter never takes it for dead
        self._presence = (fd, path)

    def _leave_owners(self) -> None:
        with self._owner_lock:
            if self._presence is not None:
                fd, path = self._presence
                self._presence = None
                path.unlink(missing_ok=True)
                os.close(fd)

    def _owners(self) -> int:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one worker per database file
            return 1
        with self._owner_lock:
            self._join_owners()
        folder = self.lock_dir / "owners"
        mine = self._presence[1] if self._presence is not None else None
        live = 0
        for path in sorted(folder.glob("*.lock")) if folder.is_dir() else []:
            if path == mine:
                live += 1
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # its process closed the log meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                live += 1
            else:
                path.unlink(missing_ok=True)  # its process died without closing the log
            finally:
                os.close(fd)
        return live
