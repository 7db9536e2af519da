"""The request log on the shared database (``herald_requests``): written off the request path by
a batching background thread, read by time window, shared by every Herald home on one PostgreSQL
database, flushed on close, and a failing database drops records without failing requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from herald.api.routes.dashboard import serving_metrics
from herald.monitoring import sensors as monitoring
from herald.services import Services
from herald.serving import requestlog
from herald.serving.hooks import RequestRecord
from herald.serving.requestlog import (
    DatabaseRequestLog,
    FileRequestLog,
    RequestLog,
    open_request_log,
    read_request_log,
)
from herald.settings import RequestLogSettings, Settings

T0 = time.time() - 3600  # recent: within the retention the writer enforces


def line(t: float, model: str = "chat", i: int = 0, **kw: Any) -> dict[str, Any]:
    return {"time": t, "request_id": f"{model}-{i}", "endpoint": "chat", "model": model,
            "version": f"models:/{model}/1", "status": 200, "latency_s": 0.1, **kw}  # fmt: skip


def record(request_id: str, status: int = 503) -> RequestRecord:
    """A request refused before the capture hooks ran (logged whatever its sampling)."""
    return RequestRecord(
        request_id=request_id, endpoint="chat", model="chat", version="models:/chat/1",
        backend="fake", status=status, latency_s=0.2, ttft_s=0.05, prompt_tokens=3,
        completion_tokens=4, finish_reason="stop", stream=False, user=None, error="busy",
    )  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'requests.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def sink(db_url: str) -> Iterator[DatabaseRequestLog]:
    s = DatabaseRequestLog(db_url, RequestLogSettings())
    try:
        yield s
    finally:
        s.close()


def test_writes_are_batched_and_read_by_window_and_model(
    sink: DatabaseRequestLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(requestlog, "PAGE", 7)  # read in several keyset pages
    for i in range(30):
        sink.write(line(T0 + i, "chat" if i % 3 else "other", i, input="user: hi"))
    assert sink.flush()
    assert sink.written == 30 and sink.dropped == 0
    every = list(sink.read())
    assert [r["time"] for r in every] == [T0 + i for i in range(30)]
    assert every[1]["input"] == "user: hi" and every[1]["version"] == "models:/chat/1"
    window = list(sink.read(since=T0 + 10, until=T0 + 20))
    assert [r["time"] for r in window] == [T0 + 10 + i for i in range(10)]
    other = list(sink.read(model="other", since=T0 + 3))
    assert [r["request_id"] for r in other] == [f"other-{i}" for i in range(3, 30, 3)]


def test_close_stores_everything_queued(db_url: str) -> None:
    s = DatabaseRequestLog(db_url, RequestLogSettings(), batch=50)
    for i in range(2000):
        s.write(line(T0 + i, i=i))
    s.close()  # a clean stop: nothing lost
    assert s.written == 2000 and s.dropped == 0
    reader = DatabaseRequestLog(db_url, RequestLogSettings())
    try:
        assert sum(1 for _ in reader.read()) == 2000
    finally:
        reader.close()


def test_retention_deletes_old_rows_and_keeps_the_newest(db_url: str) -> None:
    s = DatabaseRequestLog(db_url, RequestLogSettings(retention_days=1, max_rows=5))
    try:
        now = time.time()
        for i in range(3):
            s.write(line(now - 2 * 86400 + i, i=i))  # older than a day
        for i in range(8):
            s.write(line(now - 100 + i, i=100 + i))
        assert s.flush()
        s.prune(now=now)  # (the writer may have pruned some already)
        assert [r["request_id"] for r in s.read()] == [f"chat-{i}" for i in range(103, 108)]
        assert s.prune(now=now) == 0
    finally:
        s.close()


@pytest.mark.postgres
def test_two_homes_on_one_postgres_see_each_others_requests(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    """`herald serve` (its own HERALD_HOME) logs traffic; a worker's monitors, the rollout
    judge and the api pod's dashboard (each with another HERALD_HOME) read it."""
    serve = Settings(home=tmp_path / "serve", database_url=fresh_postgres_url)
    worker = Settings(home=tmp_path / "worker", database_url=fresh_postgres_url)
    writer = open_request_log(serve)
    assert isinstance(writer, DatabaseRequestLog)
    hooks = RequestLog(writer, serve.serving.request_log)
    on_serve, on_worker = Services(serve), Services(worker)  # two pods' services
    try:
        now = time.time()
        writer.write(line(now - 30, "chat", 1))
        hooks.record(record("served-by-the-gateway", status=500))
        assert hooks.flush()
        seen = monitoring.read_records(on_worker.request_log, since=now - 60)
        assert [r["request_id"] for r in seen] == ["chat-1", "served-by-the-gateway"]
        assert seen[1]["status"] == 500 and seen[1]["cost_usd"] is None
        assert monitoring.read_records(on_worker.request_log, since=now + 3600) == []
        charts = serving_metrics(
            on_worker.request_log, minutes=5, buckets=5, model=None, now=now + 1
        )
        assert charts["models"]["chat"]["requests"] == 2
        assert charts["models"]["chat"]["errors"] == 1
        # and the feedback of the same response, posted to the serve pod, reaches the worker
        on_serve.monitoring.add_feedback("served-by-the-gateway", 0.0, thumbs="down")
        assert on_worker.monitoring.scores_by_response() == {"served-by-the-gateway": 0.0}
        assert not (tmp_path / "serve" / "serving" / "requests").exists()
    finally:
        hooks.close()
        on_serve.close()
        on_worker.close()


@pytest.mark.postgres
def test_a_failing_database_drops_the_record_not_the_request(
    fresh_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    s = DatabaseRequestLog(fresh_postgres_url, RequestLogSettings())
    hooks = RequestLog(s, RequestLogSettings())
    try:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
            conn.execute("DROP TABLE herald_requests")  # the database fails every insert now
        with caplog.at_level(logging.WARNING, logger="herald.serving.requestlog"):
            hooks.record(record("r-1"))  # returns normally: the request is not failed
            assert hooks.flush()
        assert s.dropped == 1 and s.written == 0
        assert "dropped 1 record(s) (db_error" in caplog.text
        assert "herald_requests" in caplog.text
        assert s.dropped_total.labels("db_error")._value.get() == 1
    finally:
        hooks.close()


@pytest.mark.postgres
def test_a_full_queue_drops_instead_of_blocking(fresh_postgres_url: str) -> None:
    s = DatabaseRequestLog(fresh_postgres_url, RequestLogSettings(), queue_size=10)
    lock = psycopg.connect(fresh_postgres_url)
    try:
        lock.execute("LOCK TABLE herald_requests IN ACCESS EXCLUSIVE MODE")  # inserts wait
        s.write(line(T0, i=0))
        deadline = time.monotonic() + 30
        while s._queue.qsize() and time.monotonic() < deadline:  # the writer took it, now waits
            time.sleep(0.01)
        assert s._queue.qsize() == 0
        for i in range(1, 16):
            s.write(line(T0 + i, i=i))  # 10 queue up, 5 are dropped; none waits
        assert s.dropped == 5
        assert s.dropped_total.labels("queue_full")._value.get() == 5
        lock.rollback()  # the database is back
        assert s.flush()
        assert s.written == 11
        assert [r["request_id"] for r in s.read()] == [f"chat-{i}" for i in range(11)]
    finally:
        lock.close()
        s.close()


def test_embedded_keeps_the_files_under_herald_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'h.db'}")
    sink = open_request_log(settings)
    assert isinstance(sink, FileRequestLog)
    hooks = RequestLog(sink, settings.serving.request_log)
    hooks.record(record("embedded"))
    sink.write(line(5.0, "chat", 7))
    hooks.close()
    folder = tmp_path / "home" / "serving" / "requests"
    assert [r["request_id"] for r in read_request_log(folder)] == ["embedded", "chat-7"]
    assert [r["request_id"] for r in monitoring.read_records(sink, since=100.0)] == ["embedded"]
    assert [r["request_id"] for r in sink.read(model="chat", until=100.0)] == ["chat-7"]
