"""Where a store's state lives, so that every Herald process that needs it can see it.

Embedded (SQLite or ``memory://`` event log), every process runs on one host and shares
``HERALD_HOME``: each store keeps its own SQLite file there, as it always did. On PostgreSQL
the roles run apart (``herald api``, ``herald worker``, ``herald serve`` on different hosts or
pods, each with its own ``HERALD_HOME``), so the state they share — deployments, client keys,
evaluations, feedback and monitor state, prompt templates, the request log — lives in that
PostgreSQL database, in tables named ``herald_*``.

A store calls :func:`state_engine` with its SQLite file and its SQLAlchemy ``MetaData``; the
same SQLAlchemy Core code then runs on both. Tables are created if missing (``create_all``
under a PostgreSQL advisory lock, so N processes starting at once do not race).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, MetaData, text

if TYPE_CHECKING:
    from herald.settings import Settings

SCHEMA_LOCK = 0x48524C44  # pg_advisory_xact_lock key of create_all ("HRLD")


def is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def state_url(settings: Settings, sqlite_file: Path) -> str:
    """The shared PostgreSQL database when Herald runs on one, else ``sqlite:///sqlite_file``."""
    url = settings.resolved_database_url
    if is_postgres(url):
        return url
    return f"sqlite:///{sqlite_file}"


def state_engine(settings: Settings, sqlite_file: Path, metadata: MetaData) -> Engine:
    """An engine on :func:`state_url` with ``metadata``'s tables created."""
    return open_state(state_url(settings, sqlite_file), metadata)


def open_state(url: str, metadata: MetaData) -> Engine:
    """An engine on ``url`` (``sqlite:///file`` or ``postgresql://…``) with the tables of
    ``metadata`` created if missing."""
    from herald.registry.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK})
            metadata.create_all(conn)
    except Exception:
        engine.dispose()
        raise
    return engine
