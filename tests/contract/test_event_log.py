"""The event-log kit (herald.testing.EventLogContract) over every built-in adapter: memory,
SQLite, PostgreSQL, and PostgreSQL with NATS JetStream as the bus."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.bus import open_event_log
from herald.testing import EventLogContract, LogFactory


class TestMemoryLog(EventLogContract):
    shared_across_processes = False  # one process per memory log

    @pytest.fixture
    def make_log(self) -> LogFactory:
        return lambda: open_event_log("memory://")


class TestSQLiteLog(EventLogContract):
    @pytest.fixture
    def log_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'herald.db'}"

    @pytest.fixture
    def make_log(self, log_url: str) -> LogFactory:
        return lambda: open_event_log(log_url)


@pytest.mark.postgres
class TestPostgresLog(EventLogContract):
    @pytest.fixture
    def log_url(self, fresh_postgres_url: str) -> str:
        return fresh_postgres_url

    @pytest.fixture
    def make_log(self, log_url: str) -> LogFactory:
        return lambda: open_event_log(log_url)


@pytest.mark.postgres
class TestPostgresNatsLog(EventLogContract):
    """PostgreSQL holds the state, JetStream carries the events."""

    @pytest.fixture
    def log_url(self, fresh_postgres_url: str) -> str:
        return fresh_postgres_url

    @pytest.fixture
    def make_log(self, log_url: str, nats_url: str) -> LogFactory:
        return lambda: open_event_log(log_url, bus_url=nats_url)
