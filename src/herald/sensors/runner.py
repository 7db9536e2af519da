"""The sensor runner: one task per sensor, woken by commits (push), not by a poll interval.

For each event a sensor handles, the handler's emitted messages and job requests are committed
in one transaction together with the (sensor, event) record and the cursor, so a crash and a
redelivery never double a side effect. A failing handler is retried with exponential backoff;
after ``max_attempts`` the event is dead-lettered and the sensor moves on.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import inspect
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from herald.bus.base import DeadLetter, EventLog, Outcome
from herald.errors import HeraldError
from herald.jobs.registry import JobRegistry
from herald.messages.base import Message
from herald.messages.builtin import SensorDeadLettered
from herald.messages.catalog import Catalog
from herald.messages.envelope import Envelope
from herald.metrics import Metrics
from herald.sensors.base import SensorContext, SensorSpec, to_job_spec
from herald.sensors.cron import CronRunner, latest_tick, tick_envelope
from herald.settings import JobSettings, SensorSettings

if TYPE_CHECKING:
    from herald.services import Services

log = logging.getLogger("herald.sensors")


class HandlerError(Exception):
    """A sensor handler raised, returned something invalid, or timed out."""


class _Sensor:
    def __init__(self, spec: SensorSpec, cursor: int, enabled: bool) -> None:
        self.spec = spec
        self.cursor = cursor
        self.persisted = cursor
        self.enabled = enabled
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.last_event_at: datetime | None = None
        self.owned = False  # this process runs the sensor (see EventLog.try_own)
        self.owned_checked = 0.0  # time.monotonic() of the last confirmation


class _Tail:
    """The newest events, read once per runner and shared by all its sensors.

    Without it every sensor queried the log after every append (with 40 sensors, 40 queries per
    message, almost all of them empty). A sensor whose cursor lies inside the tail takes its
    events from memory; one that lags behind it (just took over, or was busy) reads the log.
    """

    def __init__(self, event_log: EventLog, head: int, size: int = 2048) -> None:
        self.log = event_log
        self.size = size
        self.events: list[Envelope] = []
        self.seqs: list[int] = []
        self.start = head  # the tail holds every event with start < seq <= head
        self.head = head
        self.lock = asyncio.Lock()

    def covers(self, cursor: int) -> bool:
        return cursor >= self.start

    async def upto(self, head: int) -> None:
        async with self.lock:
            while self.head < head:
                new = await self.log.read(self.head, 512)
                if not new:
                    return
                self.events.extend(new)
                self.seqs.extend(e.seq or 0 for e in new)
                self.head = self.seqs[-1]
            if len(self.events) > self.size:
                cut = len(self.events) - self.size
                self.start = self.seqs[cut - 1]
                del self.events[:cut], self.seqs[:cut]

    def after(self, cursor: int, head: int, types: tuple[str, ...], limit: int) -> list[Envelope]:
        i = bisect.bisect_right(self.seqs, cursor)
        out: list[Envelope] = []
        for e in self.events[i:]:
            if (e.seq or 0) > head or len(out) >= limit:
                break
            if e.type in types:
                out.append(e)
        return out


class SensorRunner:
    def __init__(
        self,
        event_log: EventLog,
        catalog: Catalog,
        specs: list[SensorSpec],
        *,
        jobs: JobRegistry,
        settings: SensorSettings,
        job_settings: JobSettings,
        metrics: Metrics,
        on_event: Callable[[Envelope], None] | None = None,
        services: Services | None = None,
    ) -> None:
        self.log = event_log
        self.services = services
        self.catalog = catalog
        self.specs = {s.name: s for s in specs}
        self.jobs = jobs
        self.settings = settings
        self.job_settings = job_settings
        self.metrics = metrics
        self._sensors: dict[str, _Sensor] = {}
        self._stopping = False
        self._head = 0
        self._tail: _Tail | None = None
        self._owners = 1  # live processes sharing the sensors (EventLog.owners)
        self._owners_checked = -1e9
        self.cron: CronRunner | None = None

    # lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Register every sensor's durable state (cursor) and start its task."""
        self._head = await self.log.head()
        self._tail = _Tail(self.log, self._head)
        for spec in self.specs.values():
            start = "earliest" if spec.kind == "cron" else spec.start
            state = await self.log.register_sensor(spec.name, start)
            self._sensors[spec.name] = _Sensor(spec, state.cursor, state.enabled)
        for s in self._sensors.values():
            if s.spec.kind != "cron":
                s.task = asyncio.create_task(self._run(s), name=f"sensor:{s.spec.name}")
        self.cron = CronRunner(self.log, list(self.specs.values()), self.fire_tick)
        await self.cron.start()

    async def stop(self) -> None:
        self._stopping = True
        if self.cron is not None:
            await self.cron.stop()
        tasks = [s.task for s in self._sensors.values() if s.task]
        for s in self._sensors.values():
            s.wake.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in self._sensors.values():
            if s.owned and s.cursor > s.persisted:
                try:
                    await self.log.advance_cursor(s.spec.name, s.cursor)
                except Exception:  # shutting down; the cursor is an optimisation only
                    log.debug("could not persist cursor of %s", s.spec.name, exc_info=True)
            if s.owned:
                s.owned = False
                try:
                    await self.log.release(s.spec.name)
                except Exception:  # the lock dies with the connection or process anyway
                    log.debug("could not release sensor %s", s.spec.name, exc_info=True)

    # state for the API ----------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        out = []
        for name, s in sorted(self._sensors.items()):
            out.append(
                {
                    **s.spec.describe(),
                    "enabled": s.enabled,
                    "cursor": s.cursor,
                    # a cron sensor's cursor is its last tick, not a log position: no backlog
                    "lag": 0 if s.spec.kind == "cron" else max(self._head - s.cursor, 0),
                    "last_error": s.last_error,
                    "running": bool(s.task and not s.task.done()),
                    "owned": s.owned,
                    "name": name,
                }
            )
        return out

    async def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        await self.log.set_sensor_enabled(name, enabled)
        s = self._sensors.get(name)
        if s is not None:
            s.enabled = enabled
            s.wake.set()
        return next(
            (x for x in self.status() if x["name"] == name), {"name": name, "enabled": enabled}
        )

    async def fire_tick(self, spec: SensorSpec, tick: datetime, *, catch_up: bool = True) -> None:
        """Run a cron sensor for one tick (deduplicated per tick). A worker that has just taken
        the sensor over first fires the latest earlier tick that nobody fired (``catch_up``):
        the previous owner died, or handed the sensor over at that tick (issue 14)."""
        s = self._sensors[spec.name]
        was_owned = s.owned
        # a sensor over this worker's share is handed over after its tick, not instead of it
        if not s.enabled or not await self._own(s, hand_over=False):
            return
        if catch_up and not was_owned and s.cursor:  # the cursor was reloaded on taking over
            missed = latest_tick(spec, s.cursor, tick)
            if missed is not None:
                log.info("cron %s: firing tick %s missed by the previous owner", spec.name, missed)
                await self._handle(s, tick_envelope(spec, missed).with_seq(int(missed.timestamp())))
        await self._handle(s, tick_envelope(spec, tick).with_seq(int(tick.timestamp())))
        mine = sum(1 for x in self._sensors.values() if x.owned)
        if s.owned and mine > await self._fair_share(time.monotonic()):
            await self._hand_over(s)  # the next owner takes it at its next tick

    def poke(self) -> None:
        """Wake every sensor (e.g. after a dead-letter replay request)."""
        for s in self._sensors.values():
            s.wake.set()

    # ownership ------------------------------------------------------------------------------
    async def _own(self, s: _Sensor, *, hand_over: bool = True) -> bool:
        """Whether this process runs ``s`` now: only one worker on a database runs a sensor.

        Confirmed at most every ``ownership_retry_s``; a worker that does not own a sensor tries
        to take it over at that interval, so the sensor moves on when its owner dies. On taking
        over, the cursor is reloaded: the previous owner has moved it.
        """
        now = time.monotonic()
        if s.owned and now - s.owned_checked < self.settings.ownership_retry_s:
            return True
        fair = await self._fair_share(now)
        mine = sum(1 for x in self._sensors.values() if x.owned)
        if hand_over and s.owned and mine > fair:  # more workers than when we took it
            await self._hand_over(s)
            return False
        if not s.owned and mine >= fair:  # leave it to a worker with less than its share
            return False
        try:
            owned = await self.log.try_own(s.spec.name)
        except Exception:
            if s.owned:
                log.warning("sensor %s: cannot confirm ownership; pausing it", s.spec.name)
            s.owned = False
            raise
        if owned and not s.owned:
            for state in await self.log.sensors():
                if state.name == s.spec.name:
                    s.cursor = s.persisted = state.cursor
                    s.enabled = state.enabled
            log.info("sensor %s: owned by this worker from event %d", s.spec.name, s.cursor)
        elif s.owned and not owned:
            log.warning("sensor %s: ownership lost to another worker", s.spec.name)
        s.owned = owned
        s.owned_checked = now
        return owned

    async def _fair_share(self, now: float) -> int:
        """``ceil(sensors / live workers)``, the most sensors this worker should run."""
        if now - self._owners_checked >= self.settings.ownership_retry_s:
            self._owners_checked = now
            try:
                self._owners = max(1, await self.log.owners())
            except Exception as exc:  # keep the last count; ownership itself still works
                log.warning("cannot count the live workers (%s); assuming %d", exc, self._owners)
        # cron sensors count on both sides: "mine" in _own counts every owned sensor, so a
        # total without them kept every cron sensor over the share and never owned (issue 14)
        return max(1, math.ceil(len(self._sensors) / self._owners))

    async def _hand_over(self, s: _Sensor) -> None:
        s.owned = False
        if s.cursor > s.persisted:
            await self.log.advance_cursor(s.spec.name, s.cursor)
            s.persisted = s.cursor
        await self.log.release(s.spec.name)
        log.info("sensor %s: handed over (more than this worker's share)", s.spec.name)

    # the loop -------------------------------------------------------------------------------
    async def _run(self, s: _Sensor) -> None:
        name = s.spec.name
        seen = s.cursor
        idle_rounds = 0
        while not self._stopping:
            try:
                if not s.owned or time.monotonic() - s.owned_checked >= (
                    self.settings.ownership_retry_s
                ):
                    was_owned = s.owned
                    if not await self._own(s):
                        await self._sleep(s, self.settings.ownership_retry_s)
                        continue
                    if not was_owned:
                        seen = s.cursor
                if not s.enabled:
                    await self._sleep(s, self.settings.idle_poll_s)
                    await self._refresh_enabled(s)
                    continue
                head = await self._wait(s, seen)
                self._head = max(self._head, head)
                events = await self._read(s, head)
                if head == seen and not events:
                    idle_rounds += 1
                    await self._idle(s)
                    if idle_rounds % 5 == 0:
                        await self._refresh_enabled(s)
                    continue
                idle_rounds = 0
                await self._process(s, events)
                if len(events) < self.settings.batch_size:
                    seen = head
                    if s.enabled:
                        s.cursor = max(s.cursor, head)  # everything up to head is read
                self.metrics.sensor_lag.labels(name).set(max(self._head - s.cursor, 0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database trouble: back off and retry, never die
                s.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("sensor %s: loop error; retrying in 1 s", name)
                await asyncio.sleep(1.0)

    async def _read(self, s: _Sensor, head: int) -> list[Envelope]:
        """The sensor's next events up to ``head``: from the shared tail, else from the log."""
        tail = self._tail
        if tail is not None and tail.covers(s.cursor):
            await tail.upto(head)
            if tail.covers(s.cursor) and tail.head >= head:
                return tail.after(s.cursor, head, s.spec.types, self.settings.batch_size)
        return await self.log.read(s.cursor, self.settings.batch_size, s.spec.types)

    async def _wait(self, s: _Sensor, seen: int) -> int:
        waiter = asyncio.create_task(self.log.wait(seen, self.settings.idle_poll_s))
        woke = asyncio.create_task(s.wake.wait())
        done, pending = await asyncio.wait({waiter, woke}, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        s.wake.clear()
        if waiter in done:
            return waiter.result()
        return max(seen, self._head)

    async def _sleep(self, s: _Sensor, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(s.wake.wait(), seconds)
        s.wake.clear()

    async def _refresh_enabled(self, s: _Sensor) -> None:
        for state in await self.log.sensors():
            if state.name == s.spec.name:
                s.enabled = state.enabled

    async def _idle(self, s: _Sensor) -> None:
        """Nothing new: persist a skipped-over cursor and run requested replays."""
        if s.cursor > s.persisted:
            await self.log.advance_cursor(s.spec.name, s.cursor)
            s.persisted = s.cursor
        for dl in await self.log.dead_letters(sensor=s.spec.name, status="replay_requested"):
            event = await self.log.get(dl.event_id)
            if event is not None:
                await self._handle(s, event, replay_of=dl)

    # events -------------------------------------------------------------------------------
    async def _process(self, s: _Sensor, events: list[Envelope]) -> None:
        """Handle events in order; outcomes of consecutive successes commit together."""
        pending: list[Outcome] = []
        for event in events:
            if self._stopping or not s.enabled:
                break
            self.metrics.dispatch_latency.labels(s.spec.name).observe(
                max(time.time() - event.time.timestamp(), 0.0)
            )
            try:
                outcome = await self._evaluate(s, event, 1)
            except HandlerError as exc:
                await self._commit(s, pending)
                pending = []
                await self._handle(s, event, first_error=exc)
                continue
            if outcome is None:  # filtered out by where=
                if not pending:
                    s.cursor = max(s.cursor, event.seq or 0)
                continue
            pending.append(outcome)
            if len(pending) >= 64:
                await self._commit(s, pending)
                pending = []
        await self._commit(s, pending)

    async def _handle(
        self,
        s: _Sensor,
        event: Envelope,
        replay_of: DeadLetter | None = None,
        first_error: HandlerError | None = None,
    ) -> None:
        """Handle one event with retries and exponential backoff, then dead-letter it."""
        spec = s.spec
        max_attempts = spec.max_attempts or self.settings.max_attempts
        attempt = 1
        error = first_error
        while True:
            if error is None:
                try:
                    outcome = await self._evaluate(s, event, attempt)
                except HandlerError as exc:
                    error = exc
                else:
                    if outcome is None:
                        s.cursor = max(s.cursor, event.seq or 0)
                        return
                    if replay_of is not None:
                        outcome.replay_of = replay_of.id
                        outcome.advance_cursor = False
                    await self._commit(s, [outcome])
                    return
            s.last_error = str(error)
            if attempt >= max_attempts:
                await self._dead_letter(s, event, str(error), attempt, replay_of)
                return
            delay = min(
                self.settings.backoff_initial_s * 2 ** (attempt - 1), self.settings.backoff_max_s
            )
            delay *= 0.8 + 0.4 * random.random()
            log.warning(
                "sensor %s failed on %s %s (attempt %d/%d): %s; retrying in %.2fs",
                spec.name,
                event.type,
                event.id,
                attempt,
                max_attempts,
                error,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1
            error = None

    async def _commit(self, s: _Sensor, outcomes: list[Outcome]) -> None:
        """Commit outcomes atomically, retrying database errors (outcomes are idempotent)."""
        if not outcomes:
            return
        delay = 0.1
        while True:
            try:
                results = await self.log.commit_many(outcomes)
                break
            except HeraldError as exc:
                log.warning("sensor %s: commit failed (%s); retrying", s.spec.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for o, stored in zip(outcomes, results, strict=True):
            for e in stored or ():
                self.metrics.events_appended.labels(e.type).inc()
            if o.advance_cursor:
                s.cursor = max(s.cursor, o.event_seq)
                s.persisted = max(s.persisted, o.event_seq)
            kind = "dead_letter" if o.dead_letter else "ok"
            self.metrics.sensor_handled.labels(s.spec.name, kind).inc()
        if not any(o.dead_letter for o in outcomes):
            s.last_error = None
        s.last_event_at = datetime.now(UTC)

    async def _evaluate(self, s: _Sensor, event: Envelope, attempt: int) -> Outcome | None:
        spec = s.spec
        try:
            msg: Any = (
                self.catalog.validate(event.type, event.data)
                if event.type in self.catalog
                else event
            )
        except HeraldError as exc:
            raise HandlerError(f"event does not match its schema: {exc}") from exc
        if spec.where is not None:
            try:
                if not spec.where(event if spec.kind == "rule" else msg):
                    return None
            except Exception as exc:
                raise HandlerError(f"where= raised {type(exc).__name__}: {exc}") from exc
        ctx = SensorContext(
            event=event,
            sensor=spec.name,
            attempt=attempt,
            log=logging.LoggerAdapter(
                logging.getLogger(f"herald.sensor.{spec.name}"), {"event_id": event.id}
            ),
            services=self.services,
        )
        timeout = spec.timeout_s or self.settings.timeout_s
        t0 = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(spec.handler):
                result = await asyncio.wait_for(_call(spec.handler, msg, ctx), timeout)
            else:
                result = await asyncio.wait_for(
                    asyncio.to_thread(_call_sync, spec.handler, msg, ctx), timeout
                )
        except TimeoutError:
            raise HandlerError(f"handler timed out after {timeout:g}s") from None
        except Exception as exc:
            raise HandlerError(f"{type(exc).__name__}: {exc}") from exc
        self.metrics.handler_duration.labels(spec.name).observe(time.perf_counter() - t0)
        return self._outcome(s, event, ctx, result)

    def _outcome(self, s: _Sensor, event: Envelope, ctx: SensorContext, result: Any) -> Outcome:
        emitted = list(ctx.emitted)
        for item in _as_list(result):
            if isinstance(item, Message):
                emitted.append((item, None))
            else:
                raise HandlerError(
                    f"sensor returned {type(item).__name__}; return a herald.Message, a list of "
                    "messages or None"
                )
        try:
            envelopes = [
                self.catalog.envelope(
                    m,
                    subject=subject if subject is not None else event.subject,
                    correlationid=event.correlationid,
                    causationid=None if s.spec.kind == "cron" else event.id,
                    source=f"herald/sensors/{s.spec.name}",
                )
                for m, subject in emitted
            ]
            jobs = []
            for req in ctx.jobs:
                definition = self.jobs.get(req.name)
                req.params = definition.validate(req.params)
                spec = to_job_spec(
                    req,
                    executor=self.job_settings.executor_for(definition.executor),
                    max_attempts=definition.max_attempts or self.job_settings.max_attempts,
                    sensor=s.spec.name,
                )
                if req.timeout_s is None and definition.timeout_s is not None:
                    spec = type(spec)(**{**spec.__dict__, "timeout_s": definition.timeout_s})
                jobs.append((spec, event))
        except HeraldError as exc:
            raise HandlerError(str(exc)) from exc
        return Outcome(
            sensor=s.spec.name,
            event_id=event.id,
            event_seq=event.seq or 0,
            emitted=envelopes,
            jobs=jobs,
        )

    async def _dead_letter(
        self, s: _Sensor, event: Envelope, error: str, attempts: int, previous: DeadLetter | None
    ) -> None:
        dl = DeadLetter(
            id=previous.id if previous else uuid.uuid4().hex,
            sensor=s.spec.name,
            event_id=event.id,
            event_seq=event.seq or 0,
            event_type=event.type,
            error=error[:4000],
            attempts=attempts + (previous.attempts if previous else 0),
            created_at=previous.created_at if previous else datetime.now(UTC),
        )
        notice = self.catalog.envelope(
            SensorDeadLettered(
                dead_letter_id=dl.id,
                sensor=dl.sensor,
                event_id=event.id,
                event_type=event.type,
                attempts=dl.attempts,
                error=dl.error,
            ),
            subject=f"sensor/{s.spec.name}",
            correlationid=event.correlationid,
            causationid=event.id,
            source="herald/sensors",
        )
        outcome = Outcome(
            sensor=s.spec.name,
            event_id=event.id,
            event_seq=event.seq or 0,
            emitted=[notice],
            dead_letter=dl,
            replay_of=previous.id if previous else None,
            advance_cursor=previous is None,
        )
        await self._commit(s, [outcome])
        self.metrics.dead_letters.labels(s.spec.name).inc()
        log.error(
            "sensor %s dead-lettered %s %s after %d attempts: %s",
            s.spec.name,
            event.type,
            event.id,
            attempts,
            error,
        )


@functools.lru_cache(maxsize=1024)
def _wants_ctx(fn: Callable[..., Any]) -> bool:
    """Handlers take (msg) or (msg, ctx); parameters with defaults do not count."""
    required = [p for p in inspect.signature(fn).parameters.values() if p.default is p.empty]
    return len(required) >= 2


async def _call(fn: Callable[..., Any], msg: Any, ctx: SensorContext) -> Any:
    return await (fn(msg, ctx) if _wants_ctx(fn) else fn(msg))


def _call_sync(fn: Callable[..., Any], msg: Any, ctx: SensorContext) -> Any:
    return fn(msg, ctx) if _wants_ctx(fn) else fn(msg)


def _as_list(result: Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, list | tuple):
        return list(result)
    return [result]
