"""Job state transitions shared by every adapter (pure functions over :class:`JobRecord`)."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from herald.bus import jobevents
from herald.bus.base import TERMINAL, JobRecord, JobSpec, JobStatus, Lease
from herald.errors import Conflict
from herald.messages.envelope import Envelope


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job(spec: JobSpec, cause: Envelope | None) -> JobRecord:
    """A queued job; it joins ``cause``'s flow, or starts a new one."""
    now = utcnow()
    return JobRecord(
        id=spec.id,
        name=spec.name,
        params=spec.params,
        executor=spec.executor,
        status="queued",
        attempt=0,
        max_attempts=spec.max_attempts,
        created_at=now,
        updated_at=now,
        correlationid=cause.correlationid if cause else f"job-{spec.id}",
        causationid=cause.id if cause else None,
        sensor=spec.sensor,
        timeout_s=spec.timeout_s,
        available_at=now,
    )


def lease_of(job: JobRecord, worker: str, lease_s: float, now: datetime) -> tuple[JobRecord, Lease]:
    token = secrets.token_hex(16)
    attempt = job.attempt + 1
    ev = jobevents.started(job, worker, attempt)
    job = dataclasses.replace(
        job,
        status="running",
        attempt=attempt,
        worker=worker,
        lease_token=token,
        lease_expires_at=now + timedelta(seconds=lease_s),
        started_at=now,
        updated_at=now,
        started_event=ev.id,
        error=None,
    )
    return job, Lease(job=job, token=token, started_event=ev)


def expire_lease(job: JobRecord, now: datetime) -> tuple[JobRecord, list[Envelope]]:
    """A lease ran out (worker died): requeue, or fail when attempts are used up."""
    error = f"lease expired: worker {job.worker} stopped heartbeating"
    if job.cancel_requested:
        return cancel(job, "cancelled (worker lost)")
    if job.attempt < job.max_attempts:
        done = dataclasses.replace(
            job,
            status="queued",
            lease_token=None,
            worker=None,
            error=error,
            updated_at=now,
            available_at=now,
        )
        return done, [jobevents.failed(job, error, will_retry=True)]
    done = dataclasses.replace(
        job, status="failed", lease_token=None, error=error, updated_at=now, finished_at=now
    )
    return done, [jobevents.failed(job, error, will_retry=False)]


def _progress(events: Sequence[Envelope]) -> dict[str, Any]:
    """Progress and message of the newest ``job.progressed`` events among ``events``."""
    changes: dict[str, Any] = {}
    for e in events:
        if e.type == "job.progressed":
            if e.data.get("progress") is not None:
                changes["progress"] = e.data["progress"]
            if e.data.get("message") is not None:
                changes["progress_message"] = e.data["message"]
    return changes


def finished(
    job: JobRecord,
    status: JobStatus,
    *,
    result: Any,
    error: str | None,
    retry_at: datetime | None,
    events: Sequence[Envelope] = (),
) -> JobRecord:
    """The job after an attempt ended; ``events`` (committed with it) may carry its last
    progress report."""
    job = dataclasses.replace(job, **_progress(events))
    now = utcnow()
    if retry_at is not None:
        return dataclasses.replace(
            job,
            status="queued",
            lease_token=None,
            worker=None,
            error=error,
            available_at=retry_at,
            updated_at=now,
        )
    return dataclasses.replace(
        job,
        status=status,
        lease_token=None,
        result=result,
        error=error,
        finished_at=now,
        updated_at=now,
        progress=1.0 if status == "succeeded" else job.progress,
    )


def cancel(job: JobRecord, reason: str) -> tuple[JobRecord, list[Envelope]]:
    now = utcnow()
    if job.status in TERMINAL:
        raise Conflict(f"job {job.id} already {job.status}")
    if (
        job.status == "running"
        and not job.cancel_requested
        and job.lease_expires_at
        and job.lease_expires_at >= now
    ):
        return dataclasses.replace(job, cancel_requested=True, updated_at=now), []
    done = dataclasses.replace(
        job,
        status="cancelled",
        lease_token=None,
        cancel_requested=True,
        finished_at=now,
        updated_at=now,
        error=reason,
    )
    return done, [jobevents.cancelled(job, reason)]


def retried(job: JobRecord) -> JobRecord:
    if job.status not in ("failed", "cancelled"):
        raise Conflict(
            f"job {job.id} is {job.status}; only failed or cancelled jobs can be retried"
        )
    now = utcnow()
    return dataclasses.replace(
        job,
        status="queued",
        max_attempts=max(job.max_attempts, job.attempt + 1),
        cancel_requested=False,
        error=None,
        result=None,
        finished_at=None,
        available_at=now,
        updated_at=now,
    )


def heartbeat(job: JobRecord, lease_s: float, events: Sequence[Envelope]) -> JobRecord:
    """Extend the lease; take progress from the newest ``job.progressed`` event."""
    now = utcnow()
    changes: dict[str, Any] = {
        "lease_expires_at": now + timedelta(seconds=lease_s),
        "updated_at": now,
    }
    changes.update(_progress(events))
    return dataclasses.replace(job, **changes)
