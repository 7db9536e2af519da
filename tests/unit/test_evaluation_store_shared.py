"""Evaluation results are state every role must see: on PostgreSQL they live in the shared
database (``herald_evaluations``, ``herald_evaluation_items``), so an evaluation a worker writes
is listed by an api pod with another ``HERALD_HOME``. The same store code runs on SQLite."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from herald.errors import Conflict, NotFound
from herald.evaluation.store import EvaluationStore
from herald.services import Services
from herald.settings import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("fresh_postgres_url"))
    return f"sqlite:///{tmp_path / 'evaluations' / 'evaluations.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[EvaluationStore]:
    s = EvaluationStore(store_url)
    yield s
    s.close()


def _one(store: EvaluationStore, eid: str, *, target: str, correct: list[bool]) -> None:
    store.begin(eid, suite="qa", target=target, total=len(correct), options={"k": 1})
    for i, ok in enumerate(correct):
        store.add_item(
            eid,
            f"s{i}",
            i,
            input={"q": i},
            output="Paris" if ok else "Rome",
            scores={"exact_match": 1.0 if ok else 0.0},
            errors={},
            latency_s=0.01,
        )
    value = sum(correct) / len(correct)
    store.finish(
        eid,
        status="completed",
        metrics={"exact_match": {"value": value}},
        higher_is_better={"exact_match": True},
        primary_metric="exact_match",
        passed=value > 0.5,
    )


def test_results_round_trip(store: EvaluationStore) -> None:
    ev, done = store.begin("e1", suite="qa", target="t", suite_fingerprint="f1", step=3)
    assert (ev["status"], ev["done"], ev["step"], done) == ("running", 0, 3, set())
    store.add_item("e1", "a", 0, input={"q": 1}, output="x", scores={"m": 1.0}, errors={})
    store.add_item("e1", "b", 1, input={"q": 2}, output=None, scores={}, errors={"g": "boom"})
    # a later engine merges into the item: new scores added, first output and input kept
    store.add_item("e1", "a", -1, input={"extra": 1}, output="y", scores={"j": 0.5}, errors={})
    items = store.items("e1")
    assert [i["sample_id"] for i in items] == ["a", "b"]
    assert items[0]["scores"] == {"m": 1.0, "j": 0.5} and items[0]["output"] == "x"
    assert items[0]["input"] == {"extra": 1, "q": 1} and items[0]["index"] == 0
    assert [i["sample_id"] for i in store.items("e1", failed=True)] == ["b"]
    assert [i["sample_id"] for i in store.items("e1", failed=False)] == ["a"]
    assert set(store.all_scores("e1")) == {"a", "b"}
    # resuming returns the samples already stored; another suite is a conflict
    ev, done = store.begin("e1", suite="qa", target="t", job_id="j2")
    assert done == {"a", "b"} and ev["job_id"] == "j2"
    with pytest.raises(Conflict, match="another suite"):
        store.begin("e1", suite="other", target="t")
    with pytest.raises(Conflict, match="another suite"):
        store.begin("e1", suite="qa", target="t", suite_fingerprint="f2")
    ev = store.finish("e1", status="completed", metrics={"m": {"value": 1.0}}, passed=True)
    assert ev["passed"] is True and ev["metrics"] == {"m": {"value": 1.0}}
    assert (ev["done"], ev["failed_items"]) == (2, 1) and ev["finished_at"] >= ev["created_at"]
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(NotFound):
        store.items("nope")


def test_paging_compare_and_leaderboard(store: EvaluationStore) -> None:
    stamps = [100.0, 100.5, 100.5, 101.25]
    for i, t in enumerate(stamps):
        with mock.patch("herald.evaluation.store.time.time", return_value=t):
            _one(store, f"ev-{i}", target=f"t{i}", correct=[True] * (i + 1) + [False] * 3)
    newest = [e["id"] for e in store.list_evaluations()]
    assert newest == ["ev-3", "ev-2", "ev-1", "ev-0"]
    walked: list[str] = []
    before = None
    while rows := store.list_evaluations(limit=1, before=before, suite="qa"):
        walked += [r["id"] for r in rows]
        before = (rows[-1]["created_at"], rows[-1]["id"])  # floats round-trip exactly
    assert walked == newest
    assert [e["id"] for e in store.list_evaluations(target="t1")] == ["ev-1"]
    cmp = store.compare(["ev-0", "ev-3"])["comparisons"][0]["metrics"]["exact_match"]
    assert cmp["diff"] > 0 and cmp["higher_is_better"] is True
    board = store.leaderboard("qa")
    assert [r["evaluation_id"] for r in board["data"]] == ["ev-3", "ev-2", "ev-1", "ev-0"]


@pytest.mark.postgres
def test_two_homes_on_one_database_see_each_others_evaluations(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    worker = Settings(home=tmp_path / "worker", database_url=fresh_postgres_url)
    api = Settings(home=tmp_path / "api", database_url=fresh_postgres_url)
    w, a = EvaluationStore.from_settings(worker), EvaluationStore.from_settings(api)
    try:
        _one(w, "run-1", target="m1", correct=[True, False, True])
        listed = a.list_evaluations(suite="qa", status="completed")
        assert [e["id"] for e in listed] == ["run-1"]
        assert a.get("run-1")["done"] == 3
        assert [i["output"] for i in a.items("run-1")] == ["Paris", "Rome", "Paris"]
        _one(a, "run-2", target="m2", correct=[True, True, True])
        assert [r["evaluation_id"] for r in w.leaderboard("qa")["data"]] == ["run-2", "run-1"]
        # the services' store of either role is the same database
        assert Services(worker).evaluations.get("run-2")["target"] == "m2"
        assert [e["id"] for e in Services(api).evaluations.list_evaluations()] == ["run-2", "run-1"]
        assert not (tmp_path / "worker" / "evaluations").exists()
        assert not (tmp_path / "api" / "evaluations").exists()
    finally:
        w.close()
        a.close()


@pytest.mark.postgres
def test_concurrent_writers_merge_items_and_share_one_run(fresh_postgres_url: str) -> None:
    stores = [EvaluationStore(fresh_postgres_url) for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def work(n: int, s: EvaluationStore) -> None:
        try:
            start.wait()
            s.begin("shared", suite="qa", target="t")  # all at once: one row, no error
            for i in range(10):  # each writer adds its own score to every item
                s.add_item(
                    "shared", f"s{i}", i, input={}, output="o", scores={f"w{n}": 1.0}, errors={}
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert [e["id"] for e in stores[0].list_evaluations()] == ["shared"]
        items = stores[1].items("shared")
        assert len(items) == 10
        assert all(set(i["scores"]) == {"w0", "w1", "w2", "w3"} for i in items)  # none lost
    finally:
        for s in stores:
            s.close()


def test_embedded_state_stays_in_the_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}")
    store = EvaluationStore.from_settings(settings)
    _one(store, "e", target="t", correct=[True])
    store.close()
    services = Services(settings)
    assert services.evaluations is services.evaluations  # one store per Herald
    assert services.evaluations.get("e")["done"] == 1
    services.close()  # it opened the store, so it closes it
    assert services.evaluations.get("e")["done"] == 1  # and it reopens on next use
    services.close()
    with sqlite3.connect(tmp_path / "evaluations" / "evaluations.db") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert {"herald_evaluations", "herald_evaluation_items"} <= names


def test_a_file_from_before_the_rename_is_adopted(tmp_path: Path) -> None:
    db = tmp_path / "evaluations" / "evaluations.db"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE evaluations (id TEXT PRIMARY KEY, suite TEXT NOT NULL, suite_path TEXT,
          suite_fingerprint TEXT, target TEXT NOT NULL, model TEXT, model_version TEXT,
          status TEXT NOT NULL, created_at REAL NOT NULL, finished_at REAL,
          total INTEGER DEFAULT 0, options TEXT DEFAULT '{}', metrics TEXT DEFAULT '{}',
          higher_is_better TEXT DEFAULT '{}', thresholds TEXT DEFAULT '{}', passed INTEGER,
          primary_metric TEXT, correlationid TEXT, job_id TEXT, step INTEGER, error TEXT);
        CREATE INDEX evaluations_suite ON evaluations(suite, status);
        CREATE TABLE items (evaluation_id TEXT NOT NULL, sample_id TEXT NOT NULL,
          idx INTEGER NOT NULL, input TEXT, output TEXT, scores TEXT NOT NULL DEFAULT '{}',
          errors TEXT NOT NULL DEFAULT '{}', latency_s REAL, created_at REAL NOT NULL,
          PRIMARY KEY (evaluation_id, sample_id));
        INSERT INTO evaluations (id, suite, target, status, created_at, metrics, passed)
          VALUES ('old', 'qa', 't', 'completed', 1.5, '{"m": {"value": 1}}', 1);
        INSERT INTO items VALUES ('old', 's0', 0, '{}', 'x', '{"m": 1.0}', '{}', 0.1, 1.5);
        """
    )
    conn.close()
    store = EvaluationStore.from_home(tmp_path)
    try:
        old = store.get("old")
        assert (old["passed"], old["done"], old["metrics"]) == (True, 1, {"m": {"value": 1}})
        assert store.items("old")[0]["scores"] == {"m": 1.0}
    finally:
        store.close()
    again = EvaluationStore.from_home(tmp_path)  # the legacy tables are gone: no second copy
    assert again.get("old")["done"] == 1
    again.close()
