"""MonitoringStore on its SQLite file and on the shared PostgreSQL database: the same behaviour,
and two Herald homes on one PostgreSQL database see each other's feedback and monitor state."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald.monitoring.store import MonitoringStore
from herald.services import Services
from herald.settings import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitoring' / 'state.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def store(url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(url)
    try:
        yield s
    finally:
        s.close()


def test_feedback_windows_and_latest_score(store: MonitoringStore) -> None:
    store.add_feedback("r1", 0.0, thumbs="down", model="m", user="ann", at=100.0)
    store.add_feedback("r1", 1.0, thumbs="up", comment="better", at=200.0)
    store.add_feedback("r2", 0.5, at=300.0)
    assert [f["time"] for f in store.feedback()] == [100.0, 200.0, 300.0]
    window = store.feedback(150.0, 300.0)
    assert [(f["response_id"], f["comment"]) for f in window] == [("r1", "better")]
    first = store.feedback(0.0, 150.0)[0]
    assert first["user"] == "ann" and first["model"] == "m" and first["id"].startswith("fb_")
    assert store.scores_by_response() == {"r1": 1.0, "r2": 0.5}


def test_rule_state_guardrails_and_plans_upsert(store: MonitoringStore) -> None:
    assert store.last_fired("slo", "m") is None
    store.set_fired("slo", "m", 10.0)
    store.set_fired("slo", "m", 20.0)
    store.set_fired("slo", "other", 5.0)
    assert store.last_fired("slo", "m") == 20.0
    assert store.last_fired("slo", "other") == 5.0
    store.add_guardrail("m", 2, 10, 100.0)
    store.add_guardrail("m", 3, 10, 110.0)
    store.add_guardrail("n", 1, 10, 500.0)
    assert store.guardrail_counts(0.0, 200.0) == {"m": 5}
    assert store.guardrail_counts(0.0, 1000.0) == {"m": 5, "n": 1}
    assert store.plan("ds") is None
    store.save_plan("ds", {"a": 1})
    store.save_plan("ds", {"a": 2, "nested": {"x": [1, 2]}})
    assert store.plan("ds") == {"a": 2, "nested": {"x": [1, 2]}}


def test_retrain_runs_once_per_key_and_claims(store: MonitoringStore) -> None:
    assert store.add_retrain_run("e1", "m", 100.0) is True
    assert store.add_retrain_run("e1", "m", 100.0) is False  # redelivered trigger
    assert store.retrain_runs_since("m", 0.0) == [100.0]
    # cooldown 1000 s: a second drift 500 s later is refused, the redelivered one is not
    reason = store.claim_retrain_run("e2", "m", 600.0, cooldown_s=1000.0, max_per_day=5)
    assert reason is not None and reason.startswith("cooldown: last retraining 500s ago")
    assert store.claim_retrain_run("e1", "m", 100.0, cooldown_s=1000.0, max_per_day=5) is None
    assert store.claim_retrain_run("e3", "m", 1200.0, cooldown_s=1000.0, max_per_day=5) is None
    budget = store.claim_retrain_run("e4", "m", 2300.0, cooldown_s=0.0, max_per_day=2)
    assert budget == "budget: 2 retrainings in 24 h (max_runs_per_day 2)"
    assert store.retrain_runs_since("m", 0.0) == [100.0, 1200.0]


def test_concurrent_claims_start_one_retraining(url: str) -> None:
    """Drift of one model handled by several workers at once (one store object each)."""
    stores = [MonitoringStore(url) for _ in range(4)]
    results: list[str | None] = [None] * 8
    barrier = threading.Barrier(8)

    def claim(i: int) -> None:
        barrier.wait()
        results[i] = stores[i % 4].claim_retrain_run(
            f"drift-{i}", "m", 1000.0 + i, cooldown_s=3600.0, max_per_day=10
        )

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sum(r is None for r in results) == 1, results
        assert len(stores[0].retrain_runs_since("m", 0.0)) == 1
    finally:
        for s in stores:
            s.close()


def test_a_path_still_means_that_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.db"
    s = MonitoringStore(path)
    s.add_feedback("r", 1.0)
    s.close()
    assert path.is_file() and s.path == path
    again = MonitoringStore(path)
    assert again.scores_by_response() == {"r": 1.0}
    again.close()


def test_state_db_of_the_old_table_names_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE feedback (id TEXT PRIMARY KEY, response_id TEXT NOT NULL, score REAL NOT NULL,
          thumbs TEXT, comment TEXT NOT NULL DEFAULT '', model TEXT, user TEXT, time REAL NOT NULL);
        CREATE TABLE rule_state (rule TEXT NOT NULL, model TEXT NOT NULL,
          last_fired REAL NOT NULL, PRIMARY KEY (rule, model));
        CREATE TABLE guardrail (time REAL NOT NULL, model TEXT NOT NULL, count INTEGER NOT NULL,
          requests INTEGER NOT NULL);
        CREATE TABLE retrain_runs (key TEXT PRIMARY KEY, model TEXT NOT NULL, time REAL NOT NULL);
        CREATE TABLE retrain_plans (dataset TEXT PRIMARY KEY, plan TEXT NOT NULL,
          time REAL NOT NULL);
        INSERT INTO feedback VALUES ('fb_1', 'r1', 0.25, 'down', '', 'm', 'u', 5.0);
        INSERT INTO rule_state VALUES ('slo', 'm', 7.0);
        INSERT INTO guardrail VALUES (8.0, 'm', 3, 9);
        INSERT INTO retrain_runs VALUES ('e1', 'm', 9.0);
        INSERT INTO retrain_plans VALUES ('ds', '{"a": 1}', 10.0);
        """
    )
    db.commit()
    db.close()
    s = MonitoringStore(path)
    try:
        assert s.scores_by_response() == {"r1": 0.25}
        assert s.last_fired("slo", "m") == 7.0
        assert s.guardrail_counts(0.0, 100.0) == {"m": 3}
        assert s.retrain_runs_since("m", 0.0) == [9.0]
        assert s.plan("ds") == {"a": 1}
    finally:
        s.close()
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "feedback" not in tables and "herald_feedback" in tables


@pytest.mark.postgres
def test_two_homes_on_one_postgres_share_monitoring_state(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    """A serve pod takes feedback; a worker pod (its own HERALD_HOME) evaluates rules on it."""
    serve = Settings(home=tmp_path / "serve-home", database_url=fresh_postgres_url)
    worker = Settings(home=tmp_path / "worker-home", database_url=fresh_postgres_url)
    on_serve = MonitoringStore.from_settings(serve)
    on_worker = Services(worker).monitoring  # what the worker's monitoring sensors use
    try:
        on_serve.add_feedback("resp-1", 0.0, thumbs="down", model="m")
        assert on_worker.scores_by_response() == {"resp-1": 0.0}
        on_worker.set_fired("quality", "m", 42.0)
        on_worker.add_guardrail("m", 4, 10, 50.0)
        assert on_serve.last_fired("quality", "m") == 42.0
        assert on_serve.guardrail_counts(0.0, 100.0) == {"m": 4}
        assert not (tmp_path / "serve-home" / "monitoring" / "state.db").exists()
        assert not (tmp_path / "worker-home" / "monitoring" / "state.db").exists()
    finally:
        on_serve.close()
        on_worker.close()


def test_embedded_settings_keep_the_file_under_herald_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'h.db'}")
    s = MonitoringStore.from_settings(settings)
    s.add_feedback("r", 1.0)
    s.close()
    assert (tmp_path / "home" / "monitoring" / "state.db").is_file()
