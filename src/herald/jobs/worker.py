"""The job worker: leases jobs, runs them on executors, heartbeats, records fenced results."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from herald.bus import jobevents
from herald.bus.base import EventLog, JobRecord, Lease, LeaseLost
from herald.errors import HeraldError
from herald.jobs.executors.base import Executor, JobFailure
from herald.jobs.registry import JobRegistry
from herald.messages.builtin import JobProgressed, job_event
from herald.messages.catalog import Catalog
from herald.messages.envelope import Envelope
from herald.metrics import Metrics
from herald.settings import JobSettings

log = logging.getLogger("herald.jobs")


class _Run:
    """Live state of one job attempt: buffered events and logs, flushed by the heartbeat."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.events: list[Envelope] = []
        self.logs: list[tuple[str, str]] = []
        self.flush = asyncio.Event()
        # Held while buffered events are written, so the final commit waits for an in-flight
        # heartbeat and the job's events stay in the order the job produced them.
        self.writing = asyncio.Lock()
        self.finished = False
        self.task: asyncio.Task[Any] | None = None
        self.cancel_reason: str | None = None
        self.started = time.time()


class Worker:
    def __init__(
        self,
        event_log: EventLog,
        catalog: Catalog,
        jobs: JobRegistry,
        executors: dict[str, Executor],
        settings: JobSettings,
        metrics: Metrics,
        worker_id: str | None = None,
    ) -> None:
        self.log = event_log
        self.catalog = catalog
        self.jobs = jobs
        self.executors = executors
        self.settings = settings
        self.metrics = metrics
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._runs: dict[str, _Run] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"worker:{self.id}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        runs = list(self._runs.values())
        for r in runs:
            if r.task:
                r.task.cancel()
        await asyncio.gather(*(r.task for r in runs if r.task), return_exceptions=True)
        for ex in self.executors.values():
            await ex.close()

    def poke(self) -> None:
        self._wake.set()

    def running(self) -> list[str]:
        return list(self._runs)

    def _free(self) -> list[str]:
        busy: dict[str, int] = {}
        for r in self._runs.values():
            busy[r.lease.job.executor] = busy.get(r.lease.job.executor, 0) + 1
        return [n for n, ex in self.executors.items() if busy.get(n, 0) < ex.capacity]

    async def _loop(self) -> None:
        seen = await self.log.head()
        try_lease = True
        while not self._stopping:
            try:
                free = self._free()
                if free and try_lease:
                    lease = await self.log.lease_job(self.id, self.settings.lease_s, free)
                    if lease is not None:
                        self._launch(lease)
                        continue  # maybe more work waiting
                try_lease, seen = await self._wait(seen)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s: loop error; retrying in 1 s", self.id)
                await asyncio.sleep(1.0)

    async def _wait(self, seen: int) -> tuple[bool, int]:
        """Sleep until new job events, a freed slot, or the retry timer.

        Returns (whether to try leasing, the head seen).
        """
        waiter = asyncio.create_task(self.log.wait(seen, 1.0))
        woke = asyncio.create_task(self._wake.wait())
        done, pending = await asyncio.wait({waiter, woke}, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        self._wake.clear()
        if woke in done:
            return True, seen
        head = waiter.result()
        if head == seen:
            return True, head  # timer: retries whose time came, expired leases
        new = await self.log.read(seen, 1, ["job.requested", "job.failed", "job.cancelled"])
        return bool(new), head

    def _launch(self, lease: Lease) -> None:
        run = _Run(lease)
        self._runs[lease.job.id] = run
        self.metrics.job_transitions.labels(lease.job.name, "running").inc()
        self.metrics.jobs_running.labels(lease.job.executor).inc()
        run.task = asyncio.create_task(self._run(run), name=f"job:{lease.job.id}")

    def _sink(self, run: _Run) -> Any:
        job = run.lease.job
        loop = asyncio.get_running_loop()

        def sink(item: dict[str, Any]) -> None:
            def apply() -> None:
                kind = item.get("kind")
                if kind == "log":
                    run.logs.append((str(item.get("stream", "stdout")), str(item.get("line", ""))))
                elif kind == "progress":
                    msg = JobProgressed(
                        job_id=job.id,
                        name=job.name,
                        progress=item.get("progress"),
                        message=item.get("message"),
                        metrics=item.get("metrics") or {},
                    )
                    run.events.append(
                        job_event(
                            msg,
                            job_id=job.id,
                            correlationid=job.correlationid,
                            causationid=job.started_event,
                        )
                    )
                elif kind == "emit":
                    try:
                        m = self.catalog.validate(item["type"], item.get("data", {}))
                        run.events.append(self._envelope(job, m, item.get("subject")))
                    except HeraldError as exc:
                        run.logs.append(("herald", f"emit refused: {exc}"))
                run.flush.set()

            if _in_loop(loop):
                apply()
            else:
                loop.call_soon_threadsafe(apply)

        return sink

    def _envelope(self, job: JobRecord, message: Any, subject: str | None) -> Envelope:
        return self.catalog.envelope(
            message,
            subject=subject,
            correlationid=job.correlationid,
            causationid=job.started_event or job.requested_event,
            source=f"herald/jobs/{job.name}",
        )

    async def _heartbeat(self, run: _Run) -> None:
        interval = max(self.settings.lease_s / 3, 0.05)
        last = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.flush.wait(), interval)
            run.flush.clear()
            await self._flush(run)
            if time.monotonic() - last < 0.2:
                await asyncio.sleep(0.2)  # coalesce chatty progress into few transactions
            last = time.monotonic()
            if run.cancel_reason is not None and run.task:
                run.task.cancel()
                return

    async def _flush(self, run: _Run) -> None:
        job = run.lease.job
        async with run.writing:
            if run.finished:
                return
            events, run.events = run.events, []
            logs, run.logs = run.logs, []
            if logs:
                await self.log.append_logs(job.id, logs)
            try:
                state = await self.log.heartbeat(
                    job.id, run.lease.token, self.settings.lease_s, events
                )
            except LeaseLost:
                run.cancel_reason = "lease lost (cancelled or taken over by another worker)"
                return
        if state.cancel_requested:
            run.cancel_reason = "cancelled by user"

    async def _run(self, run: _Run) -> None:
        job = run.lease.job
        executor = self.executors[job.executor]
        hb = asyncio.create_task(self._heartbeat(run))
        try:
            try:
                definition = self.jobs.get(job.name)
                sink = self._sink(run)
                body = executor.run(job, definition, sink)
                outcome = await (asyncio.wait_for(body, job.timeout_s) if job.timeout_s else body)
                await self._finish_ok(run, outcome)
            except asyncio.CancelledError:
                if self._stopping and run.cancel_reason is None:
                    raise  # shutting down: the lease expires and another attempt runs
                await self._finish(run, "cancelled", error=run.cancel_reason or "cancelled")
            except TimeoutError:
                await self._finish_failed(run, f"timed out after {job.timeout_s:g}s")
            except JobFailure as exc:
                await self._finish_failed(run, str(exc), retry=exc.retryable)
            except HeraldError as exc:
                await self._finish_failed(run, str(exc), retry=False)
            except Exception as exc:
                log.exception("job %s crashed in the worker", job.id)
                await self._finish_failed(run, f"{type(exc).__name__}: {exc}")
        except LeaseLost:
            log.warning("job %s: result fenced off (lease no longer ours)", job.id)
        finally:
            hb.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await hb
            self._runs.pop(job.id, None)
            self.metrics.jobs_running.labels(job.executor).dec()
            self._wake.set()

    async def _drain(self, run: _Run) -> list[Envelope]:
        """Take the buffered events; call with ``run.writing`` held."""
        run.finished = True
        events, run.events = run.events, []
        logs, run.logs = run.logs, []
        if logs:
            await self.log.append_logs(run.lease.job.id, logs)
        return events

    async def _finish_ok(self, run: _Run, outcome: dict[str, Any]) -> None:
        job = run.lease.job
        outputs = []
        try:
            for m in outcome.get("messages", []):
                msg = self.catalog.validate(m["type"], m.get("data", {}))
                outputs.append(self._envelope(job, msg, m.get("subject")))
        except HeraldError as exc:
            await self._finish_failed(run, f"job returned an invalid message: {exc}", retry=False)
            return
        value = outcome.get("value")
        async with run.writing:
            events = await self._drain(run)
            events.append(jobevents.succeeded(job, value, time.time() - run.started))
            events.extend(outputs)
            await self.log.finish_job(job.id, run.lease.token, "succeeded", events, result=value)
        self.metrics.job_transitions.labels(job.name, "succeeded").inc()

    async def _finish_failed(self, run: _Run, error: str, retry: bool = True) -> None:
        job = run.lease.job
        will_retry = retry and job.attempt < job.max_attempts
        retry_at = None
        if will_retry:
            delay = self.settings.backoff_initial_s * 2 ** (job.attempt - 1)
            retry_at = datetime.now(UTC) + timedelta(seconds=min(delay, 300))
        async with run.writing:
            events = await self._drain(run)
            events.append(jobevents.failed(job, error, will_retry=will_retry))
            await self.log.finish_job(
                job.id, run.lease.token, "failed", events, error=error, retry_at=retry_at
            )
        self.metrics.job_transitions.labels(job.name, "retrying" if will_retry else "failed").inc()
        log.warning("job %s (%s) attempt %d failed: %s", job.id, job.name, job.attempt, error)

    async def _finish(self, run: _Run, status: str, error: str) -> None:
        job = run.lease.job
        async with run.writing:
            events = await self._drain(run)
            events.append(jobevents.cancelled(job, error))
            await self.log.finish_job(job.id, run.lease.token, "cancelled", events, error=error)
        self.metrics.job_transitions.labels(job.name, status).inc()


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
