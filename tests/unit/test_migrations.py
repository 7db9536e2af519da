"""The Alembic migrations build exactly the schema the code declares."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from herald.store import schema
from herald.store.migrate import current, upgrade


def test_upgrade_head_matches_metadata(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        upgrade(conn)
    with engine.connect() as conn:
        assert current(conn) == "0003"
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
        assert diff == []
        assert set(inspect(conn).get_table_names()) >= {
            t.name for t in schema.metadata.sorted_tables
        }


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    for _ in range(2):
        with engine.begin() as conn:
            upgrade(conn)
    with engine.connect() as conn:
        assert current(conn) == "0003"
