"""Deployment and client-key state on SQLite and on PostgreSQL: revisions, compare-and-set,
the generation counter, and — the multi-host bug — two stores on one PostgreSQL database but
different ``HERALD_HOME`` s seeing each other's writes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from herald.errors import BackendError
from herald.serving.deployments.models import Deployment, DeploymentNotFound, Target
from herald.serving.deployments.store import DeploymentStore
from herald.serving.keys import KeyStore
from herald.settings import Settings


def dep(name: str, model: str = "models:/m/1", **kw: object) -> Deployment:
    return Deployment(name=name, targets=[Target(model=model)], **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where the store keeps its state: a SQLite file (as a Path) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return tmp_path / "serving" / "state.db"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def store(state: str | Path) -> Iterator[DeploymentStore]:
    s = DeploymentStore(state)
    yield s
    s.close()


def test_revisions_generation_and_compare_and_set(store: DeploymentStore) -> None:
    g0 = store.generation()
    assert store.list() == [] and store.find("chat") is None
    first = store.put(dep("chat"))
    assert first.revision == 1 and store.generation() == g0 + 1
    second = store.put(dep("chat", "models:/m/2"))
    assert second.revision == 2 and store.get("chat").targets[0].model == "models:/m/2"
    store.put(dep("a-first"))
    assert [d.name for d in store.list()] == ["a-first", "chat"]
    assert store.generation() == g0 + 3

    # compare-and-set: a stale writer gets the stored deployment back, nothing changes
    stale = store.put(dep("chat", "models:/m/9"), expect_revision=1)
    assert stale.revision == 2 and stale.targets[0].model == "models:/m/2"
    assert store.generation() == g0 + 3
    assert store.put(dep("chat", "models:/m/3"), expect_revision=2).revision == 3
    with pytest.raises(DeploymentNotFound):
        store.put(dep("nope"), expect_revision=4)

    # status of an old revision is ignored; of the current one recorded, without a new generation
    store.update_status("chat", 2, "failed", "old")
    assert store.get("chat").status == "pending"
    store.update_status("chat", 3, "ready", None)
    assert store.get("chat").status == "ready" and store.generation() == g0 + 4

    removed = store.delete("chat")
    assert removed.revision == 3 and store.find("chat") is None
    assert store.generation() == g0 + 5
    with pytest.raises(DeploymentNotFound, match="no deployment named 'chat'"):
        store.delete("chat")


def test_concurrent_writers_get_distinct_revisions(state: str | Path) -> None:
    """Two store objects (two processes' worth) racing on one name: every put gets its own
    revision and bumps the generation exactly once."""
    stores = [DeploymentStore(state), DeploymentStore(state)]
    g0 = stores[0].generation()
    revisions: list[int] = []
    errors: list[BaseException] = []

    def writer(s: DeploymentStore) -> None:
        try:
            for _ in range(10):
                revisions.append(s.put(dep("race")).revision)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert sorted(revisions) == list(range(1, 21))
        assert stores[1].generation() == g0 + 20
        assert stores[0].get("race").revision == 20
    finally:
        for s in stores:
            s.close()


@pytest.mark.postgres
def test_two_homes_on_one_postgres_share_deployments_and_keys(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    """The multi-host bug: worker (home A) writes a revision, a serve pod (home B) notices the
    generation change and reads it; a key created on the api pod authenticates on a serve pod."""
    home_a = Settings(home=tmp_path / "a", database_url=fresh_postgres_url)
    home_b = Settings(home=tmp_path / "b", database_url=fresh_postgres_url)
    a, b = DeploymentStore.from_settings(home_a), DeploymentStore.from_settings(home_b)
    keys_a, keys_b = KeyStore.from_settings(home_a), KeyStore.from_settings(home_b)
    try:
        seen = b.generation()
        written = a.put(dep("chat", "models:/m/7"))
        assert b.generation() != seen
        got = b.get("chat")
        assert (got.revision, got.targets[0].model) == (written.revision, "models:/m/7")
        b.update_status("chat", got.revision, "ready", None)
        assert a.get("chat").status == "ready"

        rec, secret = keys_a.create("team-b", ["inference"])
        found = keys_b.lookup(secret)
        assert found is not None and found.id == rec.id and found.scopes == ("inference",)
        assert [k.id for k in keys_b.list()] == [rec.id]
        keys_b.revoke(rec.id)
        assert keys_a.list() == [] and keys_a.lookup(secret) is None

        # the state is in PostgreSQL, under herald_ names; nothing was written in either home
        engine = create_engine(fresh_postgres_url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            tables = set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert {"herald_deployments", "herald_deployments_meta", "herald_api_keys"} <= tables
        assert not (tmp_path / "a" / "serving" / "state.db").exists()
        assert not (tmp_path / "b" / "serving" / "state.db").exists()
    finally:
        for s in (a, b, keys_a, keys_b):
            s.close()


def test_embedded_settings_keep_the_sqlite_file_in_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="memory://")
    store = DeploymentStore.from_settings(settings)
    keys = KeyStore.from_settings(settings)
    try:
        store.put(dep("chat"))
        _, secret = keys.create("team")
        assert store.url == f"sqlite:///{tmp_path / 'serving' / 'state.db'}"
        conn = sqlite3.connect(tmp_path / "serving" / "state.db")
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
        assert {"herald_deployments", "herald_deployments_meta", "herald_api_keys"} <= names
        assert keys.lookup(secret) is not None
    finally:
        store.close()
        keys.close()


def test_a_home_from_before_the_rename_keeps_its_deployments_and_keys(tmp_path: Path) -> None:
    """$HERALD_HOME/serving/state.db written by the previous release (unprefixed tables)."""
    path = tmp_path / "state.db"
    old = dep("legacy").model_copy(update={"revision": 4})
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE deployments (name TEXT PRIMARY KEY, revision INTEGER NOT NULL,
                                  body TEXT NOT NULL);
        CREATE TABLE deployments_meta (id INTEGER PRIMARY KEY CHECK (id = 1),
                                       generation INTEGER NOT NULL);
        INSERT INTO deployments_meta VALUES (1, 17);
        CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
            scopes TEXT NOT NULL, rate_per_minute REAL NOT NULL, created_at TEXT NOT NULL,
            revoked_at TEXT);
        """
    )
    import hashlib

    secret = "hk_c_abc123_" + "s" * 43
    conn.execute("INSERT INTO deployments VALUES (?, ?, ?)", ("legacy", 4, old.model_dump_json()))
    conn.execute(
        "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
        ("abc123", "old-team", hashlib.sha256(secret.encode()).hexdigest(), '["inference"]', 60.0,
         "2026-01-01T00:00:00+00:00"),
    )  # fmt: skip
    conn.commit()
    conn.close()

    store, keys = DeploymentStore(path), KeyStore(path)
    try:
        assert store.get("legacy").revision == 4
        assert store.generation() > 17  # pollers of the old counter still see a change
        assert store.put(dep("legacy")).revision == 5
        found = keys.lookup(secret)
        assert found is not None and found.name == "old-team"
    finally:
        store.close()
        keys.close()
    conn = sqlite3.connect(path)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert not names & {"deployments", "deployments_meta", "api_keys"}


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    url = "postgresql://herald:secret-pw@127.0.0.1:1/herald"  # nothing listens on port 1
    with pytest.raises(BackendError, match="deployment state database") as err:
        DeploymentStore(url)
    assert "secret-pw" not in str(err.value) and "127.0.0.1:1" in str(err.value)
    keys = KeyStore(url)
    with pytest.raises(BackendError, match="API key database") as err:
        keys.list()
    assert "secret-pw" not in str(err.value)


async def test_keys_are_hashed_scoped_and_revocable_on_each_backend(state: str | Path) -> None:
    """The key store's contract on SQLite and PostgreSQL alike: only the hash is stored, scopes
    are enforced, a revoked key stops working (another store object sees it at once)."""
    import hashlib

    from sqlalchemy import text

    keys, other = KeyStore(state), KeyStore(state)
    try:
        rec, secret = keys.create("team-a", ["inference", "batch"], rate_per_minute=600)
        with keys.engine.connect() as c:
            rows = [tuple(r) for r in c.execute(text("SELECT * FROM herald_api_keys"))]
        assert len(rows) == 1 and hashlib.sha256(secret.encode()).hexdigest() in rows[0]
        assert not any(secret in str(v) for v in rows[0])

        assert await other.authorize(secret, "/v1/chat/completions") is None
        assert await other.authorize(secret, "/v1/batches") is None
        status, message, _ = await other.authorize(secret, "/v1/keys") or (0, "", {})
        assert status == 403 and "lacks the 'admin' scope" in message
        assert (await other.authorize(secret + "x", "/v1/models") or (0,))[0] == 401

        keys.revoke(rec.id)
        fresh = KeyStore(state)  # no cache: sees the revocation now
        try:
            assert (await fresh.authorize(secret, "/v1/models") or (0,))[0] == 401
            assert [k.revoked_at is not None for k in fresh.list(include_revoked=True)] == [True]
        finally:
            fresh.close()
    finally:
        keys.close()
        other.close()
