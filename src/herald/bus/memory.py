"""In-memory event log: the test double and reference semantics of the port."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from herald.bus import jobevents, jobstate
from herald.bus.base import (
    DeadLetter,
    EventLog,
    EventQuery,
    JobRecord,
    JobSpec,
    JobStatus,
    Lease,
    LeaseLost,
    LogLine,
    Outcome,
    PageKey,
    SensorState,
    page_key,
)
from herald.errors import Conflict, NotFound
from herald.messages.envelope import Envelope


def _now() -> datetime:
    return datetime.now(UTC)


def matches(e: Envelope, q: EventQuery) -> bool:
    """Whether an event passes an :class:`EventQuery` (shared with tests)."""
    return (
        (not q.types or e.type in q.types)
        and (q.subject is None or e.subject == q.subject)
        and (q.correlationid is None or e.correlationid == q.correlationid)
        and (q.causationid is None or e.causationid == q.causationid)
        and (q.since is None or e.time >= q.since)
        and (q.until is None or e.time < q.until)
    )


class MemoryEventLog(EventLog):
    """Keeps everything in process memory; nothing survives a restart."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._events: list[Envelope] = []
        self._by_id: dict[str, Envelope] = {}
        self._cond: asyncio.Condition | None = None
        self._sensors: dict[str, SensorState] = {}
        self._processed: set[tuple[str, str]] = set()
        self._dead: dict[str, DeadLetter] = {}
        self._jobs: dict[str, JobRecord] = {}
        self._logs: dict[str, list[LogLine]] = {}

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def _notify(self) -> None:
        cond = self._condition()
        async with cond:
            cond.notify_all()

    def _append(self, events: Sequence[Envelope]) -> list[Envelope]:
        out = []
        for e in events:
            if e.id in self._by_id:
                raise Conflict(f"event id {e.id!r} already exists")
            stored = e.with_seq(len(self._events) + 1)
            self._events.append(stored)
            self._by_id[stored.id] = stored
            out.append(stored)
        return out

    # events ---------------------------------------------------------------------------------
    async def append(self, events: Sequence[Envelope]) -> list[Envelope]:
        ids = [e.id for e in events]
        if len(set(ids)) != len(ids) or any(i in self._by_id for i in ids):
            raise Conflict("duplicate event id in append")
        out = self._append(events)
        await self._notify()
        return out

    async def read(
        self, after: int, limit: int = 500, types: Sequence[str] | None = None
    ) -> list[Envelope]:
        out: list[Envelope] = []
        for e in self._events[max(after, 0) :]:
            if types is None or e.type in types:
                out.append(e)
                if len(out) >= limit:
                    break
        return out

    async def query(self, q: EventQuery) -> list[Envelope]:
        seqs = [e.seq or 0 for e in self._events]
        start = bisect.bisect_right(seqs, q.after)
        pool = self._events[start:]
        if q.descending:
            pool = list(reversed(pool))
        return [e for e in pool if matches(e, q)][: q.limit]

    async def get(self, event_id: str) -> Envelope | None:
        return self._by_id.get(event_id)

    async def head(self) -> int:
        return len(self._events)

    async def wait(self, after: int, timeout: float) -> int:
        cond = self._condition()
        async with cond:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    cond.wait_for(lambda: len(self._events) > after), timeout=timeout
                )
        return len(self._events)

    # sensors --------------------------------------------------------------------------------
    async def register_sensor(self, name: str, start: Literal["latest", "earliest"]) -> SensorState:
        if name not in self._sensors:
            cursor = len(self._events) if start == "latest" else 0
            self._sensors[name] = SensorState(
                name=name, cursor=cursor, enabled=True, updated_at=_now()
            )
        return self._sensors[name]

    async def sensors(self) -> list[SensorState]:
        return sorted(self._sensors.values(), key=lambda s: s.name)

    def _sensor(self, name: str) -> SensorState:
        try:
            return self._sensors[name]
        except KeyError:
            raise NotFound(f"no sensor named {name!r}") from None

    async def set_sensor_enabled(self, name: str, enabled: bool) -> SensorState:
        s = dataclasses.replace(self._sensor(name), enabled=enabled, updated_at=_now())
        self._sensors[name] = s
        await self._notify()
        return s

    async def commit_many(self, outcomes: Sequence[Outcome]) -> list[list[Envelope] | None]:
        out = [self._commit(o) for o in outcomes]
        await self._notify()
        return out

    def _commit(self, outcome: Outcome) -> list[Envelope] | None:
        key = (outcome.sensor, outcome.event_id)
        if key in self._processed and outcome.replay_of is None:
            return None
        self._processed.add(key)
        events = list(outcome.emitted)
        jobs = []
        for spec, cause in outcome.jobs:
            job = jobstate.new_job(spec, cause)
            req = jobevents.requested(job)
            jobs.append(dataclasses.replace(job, requested_event=req.id))
            events.append(req)
        if outcome.dead_letter is not None:
            self._dead[outcome.dead_letter.id] = outcome.dead_letter
        if outcome.replay_of is not None and outcome.dead_letter is None:
            dl = self._dead[outcome.replay_of]
            self._dead[dl.id] = dataclasses.replace(dl, status="replayed", replayed_at=_now())
        stored = self._append(events)
        for job in jobs:
            self._jobs[job.id] = job
        s = self._sensor(outcome.sensor)
        self._sensors[outcome.sensor] = dataclasses.replace(
            s,
            cursor=max(s.cursor, outcome.event_seq) if outcome.advance_cursor else s.cursor,
            processed=s.processed + (outcome.dead_letter is None),
            failed=s.failed + (outcome.dead_letter is not None),
            updated_at=_now(),
        )
        return stored

    async def advance_cursor(self, sensor: str, seq: int) -> None:
        s = self._sensor(sensor)
        if seq > s.cursor:
            self._sensors[sensor] = dataclasses.replace(s, cursor=seq, updated_at=_now())

    # dead letters ---------------------------------------------------------------------------
    async def dead_letters(
        self,
        sensor: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        before: PageKey | None = None,
    ) -> list[DeadLetter]:
        out = [
            d
            for d in self._dead.values()
            if (sensor is None or d.sensor == sensor)
            and (status is None or d.status == status)
            and (before is None or page_key(d.created_at, d.id) < before)
        ]
        out.sort(key=lambda d: page_key(d.created_at, d.id), reverse=True)
        return out if limit is None else out[:limit]

    async def request_replay(self, dead_letter_id: str) -> DeadLetter:
        dl = self._dead.get(dead_letter_id)
        if dl is None:
            raise NotFound(f"no dead letter {dead_letter_id!r}")
        if dl.status == "replayed":
            raise Conflict(f"dead letter {dead_letter_id!r} was already replayed")
        dl = dataclasses.replace(dl, status="replay_requested")
        self._dead[dl.id] = dl
        await self._notify()
        return dl

    # jobs -----------------------------------------------------------------------------------
    async def submit_job(self, spec: JobSpec, cause: Envelope | None = None) -> JobRecord:
        job = jobstate.new_job(spec, cause)
        req = jobevents.requested(job)
        job = dataclasses.replace(job, requested_event=req.id)
        self._append([req])
        self._jobs[job.id] = job
        await self._notify()
        return job

    def _job(self, job_id: str) -> JobRecord:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise NotFound(f"no job {job_id!r}") from None

    def _reap(self, now: datetime) -> list[Envelope]:
        events = []
        for job in list(self._jobs.values()):
            if job.status == "running" and job.lease_expires_at and job.lease_expires_at < now:
                job, ev = jobstate.expire_lease(job, now)
                self._jobs[job.id] = job
                events.extend(ev)
        return events

    async def lease_job(
        self, worker: str, lease_s: float, executors: Sequence[str]
    ) -> Lease | None:
        now = _now()
        events = self._reap(now)
        candidates = [
            j
            for j in self._jobs.values()
            if j.status == "queued"
            and j.executor in executors
            and (j.available_at is None or j.available_at <= now)
        ]
        lease = None
        if candidates:
            job = min(candidates, key=lambda j: (j.created_at, j.id))
            job, lease = jobstate.lease_of(job, worker, lease_s, now)
            self._jobs[job.id] = job
            events.append(lease.started_event)
        if events:
            self._append(events)
            await self._notify()
        return lease

    def _owned(self, job_id: str, token: str) -> JobRecord:
        job = self._job(job_id)
        if job.lease_token != token or job.status != "running":
            raise LeaseLost(f"job {job_id} is no longer leased with this token")
        return job

    async def heartbeat(
        self, job_id: str, token: str, lease_s: float, events: Sequence[Envelope] = ()
    ) -> JobRecord:
        job = jobstate.heartbeat(self._owned(job_id, token), lease_s, events)
        self._jobs[job_id] = job
        if events:
            self._append(events)
            await self._notify()
        return job

    async def finish_job(
        self,
        job_id: str,
        token: str,
        status: JobStatus,
        events: Sequence[Envelope],
        *,
        result: Any = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> JobRecord:
        job = self._owned(job_id, token)
        job = jobstate.finished(
            job, status, result=result, error=error, retry_at=retry_at, events=events
        )
        self._append(events)
        self._jobs[job_id] = job
        await self._notify()
        return job

    async def cancel_job(self, job_id: str, reason: str = "cancelled by user") -> JobRecord:
        job = self._job(job_id)
        job, events = jobstate.cancel(job, reason)
        self._jobs[job_id] = job
        if events:
            self._append(events)
        await self._notify()
        return job

    async def retry_job(self, job_id: str) -> JobRecord:
        job = jobstate.retried(self._job(job_id))
        self._jobs[job_id] = job
        await self._notify()
        return job

    async def get_job(self, job_id: str) -> JobRecord | None:
        return self._jobs.get(job_id)

    async def jobs(
        self,
        status: str | None = None,
        name: str | None = None,
        limit: int = 100,
        correlationid: str | None = None,
        before: PageKey | None = None,
    ) -> list[JobRecord]:
        out = [
            j
            for j in self._jobs.values()
            if (status is None or j.status == status)
            and (name is None or j.name == name)
            and (correlationid is None or j.correlationid == correlationid)
            and (before is None or page_key(j.created_at, j.id) < before)
        ]
        return sorted(out, key=lambda j: page_key(j.created_at, j.id), reverse=True)[:limit]

    async def append_logs(self, job_id: str, lines: Sequence[tuple[str, str]]) -> None:
        self._job(job_id)
        buf = self._logs.setdefault(job_id, [])
        for stream, line in lines:
            buf.append(LogLine(seq=len(buf) + 1, time=_now(), stream=stream, line=line))

    async def logs(self, job_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        self._job(job_id)
        return self._logs.get(job_id, [])[after : after + limit]
