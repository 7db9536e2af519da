"""Job lifecycle events, built the same way by every adapter."""

from __future__ import annotations

from typing import Any

from herald.bus.base import JobRecord
from herald.messages.builtin import (
    JobCancelled,
    JobFailed,
    JobRequested,
    JobStarted,
    JobSucceeded,
    job_event,
)
from herald.messages.envelope import Envelope


def requested(job: JobRecord) -> Envelope:
    return job_event(
        JobRequested(
            job_id=job.id,
            name=job.name,
            params=job.params,
            executor=job.executor,
            sensor=job.sensor,
        ),
        job_id=job.id,
        correlationid=job.correlationid,
        causationid=job.causationid,
    )


def started(job: JobRecord, worker: str, attempt: int) -> Envelope:
    return job_event(
        JobStarted(
            job_id=job.id, name=job.name, attempt=attempt, worker=worker, executor=job.executor
        ),
        job_id=job.id,
        correlationid=job.correlationid,
        causationid=job.requested_event,
    )


def succeeded(job: JobRecord, result: Any, duration_s: float) -> Envelope:
    return job_event(
        JobSucceeded(
            job_id=job.id, name=job.name, attempt=job.attempt, result=result, duration_s=duration_s
        ),
        job_id=job.id,
        correlationid=job.correlationid,
        causationid=job.started_event or job.requested_event,
    )


def failed(job: JobRecord, error: str, will_retry: bool) -> Envelope:
    return job_event(
        JobFailed(
            job_id=job.id, name=job.name, attempt=job.attempt, error=error, will_retry=will_retry
        ),
        job_id=job.id,
        correlationid=job.correlationid,
        causationid=job.started_event or job.requested_event,
    )


def cancelled(job: JobRecord, reason: str) -> Envelope:
    return job_event(
        JobCancelled(job_id=job.id, name=job.name, reason=reason),
        job_id=job.id,
        correlationid=job.correlationid,
        causationid=job.started_event or job.requested_event,
    )
