"""The plumbing the shared-state stores have in common (herald.store.shared)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, Text, select

from herald.errors import BackendError
from herald.settings import Settings
from herald.store.shared import (
    StateStore,
    adopt_legacy_tables,
    safe_url,
    sqlite_path,
    state_target,
)

META = MetaData()
THINGS = Table(
    "herald_things",
    META,
    Column("id", Text, primary_key=True),
    Column("size", Integer, nullable=False, server_default="0"),
    Column("note", Text),
)


class ThingStore(StateStore):
    metadata = META
    sqlite_file = "things/things.db"
    what = "thing database"
    legacy_tables = {"things": THINGS}

    def __init__(self, target: Path | str) -> None:
        self.opened = 0
        super().__init__(target)

    def _on_open(self, conn: Connection) -> None:
        self.opened += 1

    def ids(self) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(select(THINGS.c.id).order_by(THINGS.c.id)).scalars())


class LazyThingStore(ThingStore):
    eager = False


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://herald:pw@127.0.0.1:5432/h", "postgresql://herald:***@127.0.0.1:5432/h"),
        (
            "postgresql+psycopg://u:p%40ss@db.example/h?sslmode=require",
            "postgresql+psycopg://u:***@db.example/h?sslmode=require",
        ),
        ("nats://token:s3cret@nats:4222", "nats://token:***@nats:4222"),
        ("s3://AKIA:SECRET@bucket/prefix?endpoint=http://minio:9000", None),
        ("postgresql://u:p@ss:wd@host/db", "postgresql://u:***@host/db"),
        ("postgresql://herald@host/db", "postgresql://herald@host/db"),
        ("sqlite:////var/herald/state.db", "sqlite:////var/herald/state.db"),
        ("s3://bucket/key?tag=a@b:c", "s3://bucket/key?tag=a@b:c"),
        ("/plain/path.db", "/plain/path.db"),
    ],
)
def test_safe_url_masks_only_the_password(url: str, masked: str | None) -> None:
    out = safe_url(url)
    if masked is None:  # the query stays as it was
        assert out == "s3://AKIA:***@bucket/prefix?endpoint=http://minio:9000"
    else:
        assert out == masked
    for secret in ("pw", "p%40ss", "s3cret", "SECRET", "p@ss:wd"):
        if f":{secret}@" in url:
            assert secret not in out


def test_state_target_and_sqlite_path(tmp_path: Path) -> None:
    assert state_target(tmp_path / "a.db") == f"sqlite:///{tmp_path / 'a.db'}"
    assert state_target(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"
    assert state_target("postgresql://h/db") == "postgresql://h/db"
    assert state_target("~/x.db") == f"sqlite:///{Path('~/x.db').expanduser()}"
    assert sqlite_path(f"sqlite:///{tmp_path / 'a.db'}") == tmp_path / "a.db"
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("postgresql://h/db") is None


def test_adopts_the_common_columns_of_legacy_tables_once(tmp_path: Path) -> None:
    path = tmp_path / "things.db"
    with sqlite3.connect(path) as raw:  # a file of an older release: no "note" column
        raw.execute("CREATE TABLE things (id TEXT PRIMARY KEY, size INTEGER, colour TEXT)")
        raw.executemany("INSERT INTO things VALUES (?, ?, ?)", [("a", 1, "red"), ("b", 2, "x")])
    raw.close()
    store = ThingStore(path)
    try:
        assert store.ids() == ["a", "b"] and store.opened == 1
        with store._read() as conn:
            assert conn.execute(select(THINGS.c.size, THINGS.c.note)).all() == [
                (1, None),
                (2, None),
            ]
            assert adopt_legacy_tables(conn, {"things": THINGS}) == []  # the old table is gone
    finally:
        store.close()
    again = ThingStore(path)  # nothing copied twice
    try:
        assert again.ids() == ["a", "b"]
    finally:
        again.close()


def test_from_settings_and_lazy_opening(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    store = ThingStore.from_settings(settings)
    try:
        assert store.path == tmp_path / "things" / "things.db" and store.path.is_file()
    finally:
        store.close()
    lazy = LazyThingStore(tmp_path / "lazy" / "things.db")
    try:
        assert lazy._engine is None and lazy.opened == 0
        assert lazy.ids() == [] and lazy.opened == 1
        lazy.close()
        assert lazy.ids() == [] and lazy.opened == 2  # reopens on next use
    finally:
        lazy.close()


def test_errors_name_the_store_and_the_masked_url(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as err:
        ThingStore("postgresql://herald:hunter2@127.0.0.1:1/herald")  # nothing listens there
    message = str(err.value)
    assert "cannot open the thing database postgresql://herald:***@127.0.0.1:1/herald" in message
    assert "hunter2" not in message and "check the database URL" in message
    (tmp_path / "dir.db").mkdir()  # a folder where the file should be
    with pytest.raises(BackendError, match="cannot open the thing database sqlite:///"):
        ThingStore(tmp_path / "dir.db")


def test_sqlite_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """Reads run in autocommit on SQLite: one made while a write transaction is open (here on
    the same thread, which would wait on itself until the busy timeout) sees the last commit."""
    from herald.evaluation.store import EvaluationStore

    writer, reader = EvaluationStore(tmp_path / "e.db"), EvaluationStore(tmp_path / "e.db")
    writer.begin("e1", suite="tiny", target="x")
    with writer._tx():  # holds SQLite's write lock (BEGIN IMMEDIATE)
        assert [e["id"] for e in reader.list_evaluations(limit=10)] == ["e1"]
        assert [e["id"] for e in writer.list_evaluations(limit=10)] == ["e1"]
    writer.begin("e2", suite="tiny", target="x")
    assert {e["id"] for e in reader.list_evaluations(limit=10)} == {"e1", "e2"}
