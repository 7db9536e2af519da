"""Workers on one PostgreSQL split the sensors fairly (ceil(sensors / live workers)), hand
sensors over when a worker joins, take them back when it leaves, and still handle each event once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

import herald
from herald import Herald
from herald.bus import EventQuery
from herald.jobs import JobRegistry
from herald.sensors import SensorRegistry
from herald.settings import Settings

pytestmark = pytest.mark.postgres


class Ping(herald.Message, type="test.partition.ping"):
    n: int


class Pong(herald.Message, type="test.partition.pong"):
    n: int
    sensor: str


def registry(n: int) -> SensorRegistry:
    reg = SensorRegistry()

    def make(name: str) -> object:
        def handler(msg: Ping, ctx: herald.SensorContext) -> Pong:
            return Pong(n=msg.n, sensor=name)

        return handler

    for i in range(n):
        herald.sensor(on=Ping, name=f"part-{i}", registry=reg)(make(f"part-{i}"))  # type: ignore[arg-type]
    return reg


def owned(h: Herald) -> int:
    assert h.runner is not None
    return sum(1 for s in h.runner._sensors.values() if s.owned)


async def until(cond: object, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def test_sensors_are_shared_fairly_and_handed_back(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    reg, jobs = registry(6), JobRegistry()

    def make(i: int) -> Herald:
        s = Settings(home=tmp_path / f"h{i}", database_url=fresh_postgres_url,
                     sensors={"ownership_retry_s": 0.2, "idle_poll_s": 0.2})  # fmt: skip
        return Herald(s, sensors=reg, jobs=jobs)

    a, b = make(0), make(1)
    await a.start(workers=False)
    try:
        await until(lambda: owned(a) == 6)
        await b.start(workers=False)
        await until(lambda: owned(a) == 3 and owned(b) == 3)
        for n in range(20):
            await a.emit(Ping(n=n))
        pongs: list[herald.Envelope] = []

        async def all_pongs() -> None:
            nonlocal pongs
            while len(pongs) < 120:
                pongs = await a.log.query(EventQuery(types=["test.partition.pong"], limit=1000))
                await asyncio.sleep(0.1)

        await asyncio.wait_for(all_pongs(), 60)
        per = Counter((p.data["sensor"], p.data["n"]) for p in pongs)
        assert len(per) == 120 and set(per.values()) == {1}  # every sensor, every ping, once
        await b.stop()
        await until(lambda: owned(a) == 6)  # the survivor takes everything back
    finally:
        await a.stop()
        await b.stop()
