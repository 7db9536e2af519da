"""Message types Herald itself emits."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from herald.messages.base import Message
from herald.messages.catalog import default_catalog
from herald.messages.envelope import Envelope


class JobRequested(Message, type="job.requested"):
    """A sensor (or a user) asked for a job to run."""

    job_id: str
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    executor: str
    sensor: str | None = None


class JobStarted(Message, type="job.started"):
    """A worker leased the job and started it."""

    job_id: str
    name: str
    attempt: int
    worker: str
    executor: str


class JobProgressed(Message, type="job.progressed"):
    """A running job reported progress."""

    job_id: str
    name: str
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    message: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class JobSucceeded(Message, type="job.succeeded"):
    """A job finished successfully."""

    job_id: str
    name: str
    attempt: int
    result: Any = None
    duration_s: float


class JobFailed(Message, type="job.failed"):
    """A job attempt failed; ``will_retry`` tells whether another attempt is queued."""

    job_id: str
    name: str
    attempt: int
    error: str
    will_retry: bool = False


class JobCancelled(Message, type="job.cancelled"):
    """A job was cancelled before it finished."""

    job_id: str
    name: str
    reason: str = "cancelled by user"


class SensorDeadLettered(Message, type="sensor.deadlettered"):
    """A sensor failed on an event after all retries; the event is in the dead-letter list."""

    dead_letter_id: str
    sensor: str
    event_id: str
    event_type: str
    attempts: int
    error: str


JOB_MESSAGES = (JobRequested, JobStarted, JobProgressed, JobSucceeded, JobFailed, JobCancelled)


def job_event(
    message: Message,
    *,
    job_id: str,
    correlationid: str,
    causationid: str | None,
) -> Envelope:
    """Envelope for a job lifecycle message (subject = the job id)."""
    return default_catalog.envelope(
        message,
        subject=f"job/{job_id}",
        correlationid=correlationid,
        causationid=causationid,
        source="herald/jobs",
    )
