"""Cron sensors: emit messages on a schedule (croniter), exactly once per tick.

A tick's outcome is committed with the (sensor, ``cron:<tick>``) dedupe record; the sensor's
durable cursor holds the last fired tick (epoch seconds). After downtime, only the most
recent missed tick fires (like Kubernetes CronJobs), never a burst of them. Every worker keeps
the schedule, and the one that owns the sensor at a tick fires it; a worker that takes the
sensor over (its owner died or handed it over at a tick) first fires the most recent tick after
the cursor that nobody fired, so a change of owner loses no tick.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from herald.bus.base import EventLog
from herald.cronexpr import validate_cron
from herald.messages.envelope import Envelope
from herald.sensors.base import SensorRegistry, SensorSpec, default_name, default_registry

log = logging.getLogger("herald.sensors.cron")
__all__ = ["CronRunner", "latest_tick", "schedule", "tick_envelope", "validate_cron"]


def schedule(
    cron: str,
    *,
    name: str | None = None,
    timezone: str = "UTC",
    registry: SensorRegistry | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run ``fn(ctx)`` on a cron schedule; returned messages are emitted."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sensor_name = name or default_name(fn)
        validate_cron(cron, timezone, f"schedule {sensor_name}")
        n = len(inspect.signature(fn).parameters)

        def handler(_msg: Any, ctx: Any) -> Any:
            return fn(ctx) if n else fn()

        spec = SensorSpec(
            name=sensor_name,
            types=(),
            handler=handler,
            description=(fn.__doc__ or "").strip(),
            origin=f"{fn.__module__}:{fn.__qualname__}",
            kind="cron",
            cron=f"{cron}|{timezone}",
        )
        (registry or default_registry).add(spec)
        return fn

    return deco


def tick_envelope(spec: SensorSpec, tick: datetime) -> Envelope:
    """A synthetic trigger for one tick (not stored; its id is the dedupe key)."""
    return Envelope(
        id=f"cron:{spec.name}:{tick.isoformat()}",
        type="herald.cron.tick",
        source=f"herald/cron/{spec.name}",
        subject=f"cron/{spec.name}",
        time=tick,
        data={"tick": tick.isoformat()},
        correlationid=f"cron:{spec.name}:{int(tick.timestamp())}",
    )


def latest_tick(spec: SensorSpec, after: float, before: datetime) -> datetime | None:
    """The most recent tick of ``spec`` strictly between epoch ``after`` and ``before``."""
    assert spec.cron is not None
    expr, _, tz = spec.cron.partition("|")
    zone = ZoneInfo(tz or "UTC")
    it = croniter(expr, datetime.fromtimestamp(after, zone))
    found: datetime | None = None
    while (candidate := it.get_next(datetime)) < before:
        found = candidate
    return found


class CronRunner:
    """Fires cron sensors; ``fire(spec, tick)`` commits one tick through the sensor runner."""

    def __init__(
        self, event_log: EventLog, specs: list[SensorSpec], fire: Callable[..., Any]
    ) -> None:
        self.log = event_log
        self.specs = [s for s in specs if s.kind == "cron"]
        self.fire = fire
        self._tasks: list[asyncio.Task[None]] = []
        self.next_fire: dict[str, datetime] = {}

    async def start(self) -> None:
        for spec in self.specs:
            state = await self.log.register_sensor(spec.name, "earliest")
            self._tasks.append(
                asyncio.create_task(self._run(spec, state.cursor), name=f"cron:{spec.name}")
            )

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, spec: SensorSpec, last_fired: int) -> None:
        assert spec.cron is not None
        expr, _, tz = spec.cron.partition("|")
        zone = ZoneInfo(tz or "UTC")
        now = datetime.now(zone)
        if last_fired:
            missed = latest_tick(spec, last_fired, now + timedelta(microseconds=1))
            if missed is not None:
                log.info("cron %s: firing missed tick %s", spec.name, missed.isoformat())
                await self._fire(spec, missed, catch_up=False)
        it = croniter(expr, datetime.now(zone))
        while True:
            tick: datetime = it.get_next(datetime)
            self.next_fire[spec.name] = tick
            await asyncio.sleep(max((tick - datetime.now(zone)).total_seconds(), 0))
            await self._fire(spec, tick)

    async def _fire(self, spec: SensorSpec, tick: datetime, *, catch_up: bool = True) -> None:
        try:
            await self.fire(spec, tick.astimezone(UTC), catch_up=catch_up)
        except Exception:
            log.exception("cron %s: tick %s failed", spec.name, tick.isoformat())
