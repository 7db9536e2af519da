"""The job-executor contract kit: what every :class:`~herald.jobs.executors.base.Executor` does.

Subclass :class:`ExecutorContract` and provide a ``make_executor`` fixture: a callable that
returns a new executor able to run the kit's job functions, which live in
:mod:`herald.testing.jobs` (pass :data:`~herald.testing.jobs.KIT_PLUGIN` as a plugin to an
executor that runs jobs in another process)::

    class TestSlurmExecutor(ExecutorContract):
        @pytest.fixture
        def make_executor(self, slurm_cluster):
            return lambda: SlurmExecutor(slurm_cluster.url, plugins=[KIT_PLUGIN])

The checks: the result has the ``{"messages": [...], "value": ...}`` shape, parameters arrive
as JSON values, progress, ``ctx.log`` lines and live messages reach the sink while the job
runs, returned messages come back as ``{"type", "data", "subject"}``, coroutine job functions
are awaited (also concurrently, each run its own), a raising job is a retryable
:class:`~herald.jobs.executors.base.JobFailure` naming the error while a request error (a 4xx
Herald error) is not retryable, and cancelling the awaiting task stops the job.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from herald.bus.base import JobRecord
from herald.jobs.executors.base import Executor, JobFailure
from herald.jobs.registry import default_jobs
from herald.testing import jobs as _kit_jobs  # noqa: F401 (registers the kit's job functions)
from herald.testing._support import rename, run

__all__ = ["ExecutorContract", "ExecutorFactory"]

ExecutorFactory = Callable[[], Executor]
Body = Callable[[Any, Executor], Awaitable[None]]


def job_record(name: str, params: dict[str, Any], executor: str) -> JobRecord:
    """A leased, running job as a worker hands it to an executor."""
    now = datetime.now(UTC)
    return JobRecord(
        id=uuid.uuid4().hex,
        name=name,
        params=params,
        executor=executor,
        status="running",
        attempt=1,
        max_attempts=1,
        created_at=now,
        updated_at=now,
        correlationid=uuid.uuid4().hex,
        causationid=None,
    )


async def run_job(
    executor: Executor, name: str, params: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]], JobRecord]:
    """Run job ``name``; returns the executor's result, what reached the sink, and the job."""
    sunk: list[dict[str, Any]] = []
    job = job_record(name, params, executor.name)
    result = await executor.run(job, default_jobs.get(name), sunk.append)
    return result, sunk, job


def _check(body: Body) -> Callable[[Any, ExecutorFactory], None]:
    def test(self: ExecutorContract, make_executor: ExecutorFactory) -> None:
        async def main() -> None:
            executor = make_executor()
            try:
                await body(self, executor)
            finally:
                await executor.close()

        run(main())

    rename(test, body)
    return test


class ExecutorContract:
    """The observable contract of an executor (see the module doc)."""

    @_check
    async def test_result_progress_logs_and_live_messages(self, executor: Executor) -> None:
        assert isinstance(executor.name, str) and executor.name and executor.capacity >= 1
        extra = {"items": [1, 2.5, None], "nested": {"é": True}}
        result, sunk, job = await run_job(
            executor, "herald.testing.echo", {"text": "ab", "times": 2, "extra": extra}
        )
        assert result == {
            "messages": [],
            "value": {"text": "abab", "extra": extra, "attempt": 1, "job_id": job.id},
        }
        kinds = {item.get("kind") for item in sunk}
        assert {"progress", "log", "emit"} <= kinds, sunk
        [progress] = [i for i in sunk if i["kind"] == "progress"]
        assert (progress["progress"], progress["message"]) == (0.5, "half way")
        assert progress["metrics"] == {"loss": 1.5}
        assert any(i["kind"] == "log" and i["line"] == "kit log line" for i in sunk)
        [emitted] = [i for i in sunk if i["kind"] == "emit"]
        assert (emitted["type"], emitted["data"], emitted["subject"]) == (
            "herald.testing.probed",
            {"n": 2},
            "probe",
        )

    @_check
    async def test_returned_messages_come_back_in_the_result(self, executor: Executor) -> None:
        result, _, _ = await run_job(executor, "herald.testing.messages", {"n": 2})
        assert result == {
            "messages": [
                {"type": "herald.testing.probed", "data": {"n": 0}, "subject": None},
                {"type": "herald.testing.probed", "data": {"n": 1}, "subject": None},
            ],
            "value": None,
        }

    @_check
    async def test_a_raising_job_is_a_retryable_failure(self, executor: Executor) -> None:
        with pytest.raises(JobFailure) as err:
            await run_job(executor, "herald.testing.fail", {"kind": "crash"})
        assert "ValueError: boom" in str(err.value)
        assert err.value.retryable is True

    @_check
    async def test_a_request_error_is_not_retryable(self, executor: Executor) -> None:
        with pytest.raises(JobFailure) as err:
            await run_job(executor, "herald.testing.fail", {"kind": "request"})
        assert "the request itself is wrong" in str(err.value)
        assert err.value.retryable is False

    @_check
    async def test_concurrent_coroutine_jobs_stay_apart(self, executor: Executor) -> None:
        results = await asyncio.gather(
            *(run_job(executor, "herald.testing.async_double", {"x": x}) for x in (1, 21))
        )
        assert [r for r, _, _ in results] == [
            {"messages": [], "value": 2},
            {"messages": [], "value": 42},
        ]

    def test_cancelling_the_task_stops_the_job(
        self, make_executor: ExecutorFactory, tmp_path: Path
    ) -> None:
        run(self._cancel(make_executor(), tmp_path / "ticks.txt"))

    async def _cancel(self, executor: Executor, ticks: Path) -> None:
        def count() -> int:
            return len(ticks.read_text().splitlines()) if ticks.exists() else 0

        try:
            task = asyncio.create_task(
                run_job(executor, "herald.testing.until_cancelled", {"path": str(ticks)})
            )
            for _ in range(600):  # the job has started (a subprocess or a cluster may be slow)
                if count() >= 2 or task.done():
                    break
                await asyncio.sleep(0.1)
            assert not task.done(), "the job ended before it was cancelled"
            assert count() >= 2, "the job never started"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            last = -1
            for _ in range(100):  # a thread or process may finish its current tick
                await asyncio.sleep(0.1)
                now = count()
                if now == last:
                    break
                last = now
            else:
                pytest.fail("the job kept running after its task was cancelled")
            await asyncio.sleep(0.3)
            assert count() == last, "the job kept running after its task was cancelled"
        finally:
            await executor.close()
