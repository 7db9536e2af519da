"""SQLAlchemy engines for Herald's own tables (registry, shared state stores): SQLite in WAL
mode with write-lock-first transactions, PostgreSQL through psycopg, or a private in-memory
SQLite for ``memory://``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from herald.errors import BackendUnavailable, ConfigurationError

__all__ = ["make_engine"]


def make_engine(database_url: str) -> Engine:
    """A SQLAlchemy engine for ``database_url``; ``memory://`` gives a private in-memory SQLite."""
    if database_url.startswith("memory:"):
        engine = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
        _sqlite_hooks(engine, wal=False)
        return engine
    url = make_url(database_url)
    if url.drivername.startswith("sqlite"):
        if not url.database or url.database == ":memory:":
            raise ConfigurationError(
                "a Herald database needs a SQLite file path (sqlite:///path/herald.db) or memory://"
            )
        path = Path(url.database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url.set(database=str(path)),
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=4,
            max_overflow=4,
        )
        _sqlite_hooks(engine, wal=True)
        return engine
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendUnavailable(
                'PostgreSQL needs psycopg: pip install "herald[postgres]"'
            ) from exc
        return create_engine(
            url.set(drivername="postgresql+psycopg"),
            pool_size=4,
            max_overflow=4,
            pool_pre_ping=True,
        )
    raise ConfigurationError(
        f"Herald cannot use {url.drivername}:// databases (use sqlite:///..., "
        "postgresql://... or memory://)"
    )


def _sqlite_hooks(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself
        cur = dbapi_conn.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # take the write lock up front: read-then-write transactions never deadlock
        conn.exec_driver_sql("BEGIN IMMEDIATE")
