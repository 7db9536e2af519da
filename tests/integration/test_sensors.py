"""Sensor runner behaviour: push delivery, causation, filters, retries, dead letters, replay,
enable/disable, durable cursors and cron schedules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import herald
from herald.bus import EventQuery
from herald.sensors.cron import tick_envelope

from .conftest import Env


class Ping(herald.Message, type="test.ping"):
    n: int


class Pong(herald.Message, type="test.pong"):
    n: int


async def test_sensor_emits_caused_messages_and_filters(env: Env) -> None:
    @herald.sensor(on=Ping, where=lambda m: m.n % 2 == 0, registry=env.sensors, name="pong")
    def pong(msg: Ping, ctx: herald.SensorContext) -> Pong:
        return Pong(n=msg.n)

    h = await env.start()
    sent = [await h.emit(Ping(n=i), subject=f"s{i}") for i in range(10)]
    pongs = await env.wait_for("test.pong", 5)
    await asyncio.sleep(0.1)
    pongs = await env.wait_for("test.pong", 6, timeout=0.2)
    assert sorted(p.data["n"] for p in pongs) == [0, 2, 4, 6, 8]
    by_id = {e.id: e for e in sent}
    for p in pongs:
        cause = by_id[p.causationid or ""]
        assert cause.data["n"] == p.data["n"]
        assert p.correlationid == cause.correlationid
        assert p.subject == cause.subject  # subject carries over unless the sensor sets one
        assert p.source == "herald/sensors/pong"


async def test_context_emit_list_and_async_handler(env: Env) -> None:
    @herald.sensor(on="test.ping", registry=env.sensors, name="fan")
    async def fan(msg: Ping, ctx: herald.SensorContext) -> list[Pong]:
        ctx.emit(Pong(n=100 + msg.n), subject="via-ctx")
        return [Pong(n=msg.n), Pong(n=-msg.n)]

    h = await env.start()
    await h.emit(Ping(n=3))
    pongs = await env.wait_for("test.pong", 3)
    assert sorted(p.data["n"] for p in pongs) == [-3, 3, 103]
    assert {p.subject for p in pongs if p.data["n"] == 103} == {"via-ctx"}


async def test_failing_sensor_retries_then_dead_letters_and_replays(env: Env) -> None:
    calls: list[int] = []
    healed = {"ok": False}

    @herald.sensor(on=Ping, registry=env.sensors, name="flaky")
    def flaky(msg: Ping) -> Pong:
        calls.append(msg.n)
        if msg.n == 1 and not healed["ok"]:
            raise RuntimeError("boom")
        return Pong(n=msg.n)

    h = await env.start()
    for i in range(3):
        await h.emit(Ping(n=i))
    await env.wait_for("test.pong", 2)
    [notice] = await env.wait_for("sensor.deadlettered", 1)
    assert calls.count(1) == 3  # max_attempts in the test settings
    assert notice.data["error"] == "RuntimeError: boom"
    [dl] = await h.log.dead_letters()
    assert dl.sensor == "flaky" and dl.status == "dead" and dl.attempts == 3
    # later events were not blocked forever by the poison one
    assert sorted(p.data["n"] for p in await env.wait_for("test.pong", 2)) == [0, 2]
    healed["ok"] = True
    await h.log.request_replay(dl.id)
    assert h.runner is not None
    h.runner.poke()
    pongs = await env.wait_for("test.pong", 3)
    assert sorted(p.data["n"] for p in pongs) == [0, 1, 2]
    [done] = await h.log.dead_letters()
    assert done.status == "replayed"


async def test_invalid_return_value_is_dead_lettered(env: Env) -> None:
    @herald.sensor(on=Ping, registry=env.sensors, name="bad")
    def bad(msg: Ping) -> object:
        return {"not": "a message"}

    h = await env.start()
    await h.emit(Ping(n=1))
    [notice] = await env.wait_for("sensor.deadlettered", 1)
    assert "return a herald.Message" in notice.data["error"]


async def test_disable_and_enable_at_run_time_loses_nothing(env: Env) -> None:
    @herald.sensor(on=Ping, registry=env.sensors, name="toggle")
    def toggle(msg: Ping) -> Pong:
        return Pong(n=msg.n)

    h = await env.start()
    assert h.runner is not None
    await h.runner.set_enabled("toggle", False)
    await h.emit(Ping(n=1))
    await asyncio.sleep(0.3)
    assert await h.log.query(EventQuery(types=["test.pong"])) == []
    await h.runner.set_enabled("toggle", True)
    assert [p.data["n"] for p in await env.wait_for("test.pong", 1)] == [1]


async def test_cursor_is_durable_across_restart(sqlite_env: Env) -> None:
    env = sqlite_env
    seen: list[int] = []

    @herald.sensor(on=Ping, registry=env.sensors, name="count")
    def count(msg: Ping) -> Pong:
        seen.append(msg.n)
        return Pong(n=msg.n)

    h = await env.start()
    await h.emit(Ping(n=1))
    await env.wait_for("test.pong", 1)
    await h.stop()
    env.herald = None
    # while the sensor is down, a message arrives; on restart it is handled once
    h = await env.start()
    await h.emit(Ping(n=2))
    await env.wait_for("test.pong", 2)
    await asyncio.sleep(0.2)
    assert seen == [1, 2]
    assert len(await h.log.query(EventQuery(types=["test.pong"]))) == 2


async def test_new_sensor_starts_at_latest_unless_earliest(env: Env) -> None:
    @herald.sensor(on=Ping, registry=env.sensors, name="late")
    def late(msg: Ping) -> Pong:
        return Pong(n=msg.n)

    @herald.sensor(on=Ping, registry=env.sensors, name="early", start="earliest")
    def early(msg: Ping) -> Pong:
        return Pong(n=1000 + msg.n)

    h = herald.Herald(env.settings(), sensors=herald.sensors.SensorRegistry(), jobs=env.jobs)
    await h.start()
    await h.emit(Ping(n=1))  # before the sensors exist
    await h.stop()
    h = await env.start()
    await h.emit(Ping(n=2))
    pongs = await env.wait_for("test.pong", 3)
    if env.url == "memory://":  # the memory log does not survive the restart
        assert sorted(p.data["n"] for p in pongs) == [2, 1002]
    else:
        assert sorted(p.data["n"] for p in pongs) == [2, 1001, 1002]


async def test_cron_tick_fires_once_per_tick(env: Env) -> None:
    @herald.schedule("* * * * *", name="minutely", registry=env.sensors)
    def minutely(ctx: herald.SensorContext) -> Pong:
        return Pong(n=7)

    h = await env.start()
    assert h.runner is not None
    spec = env.sensors.get("minutely")
    assert spec is not None
    tick = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    await h.runner.fire_tick(spec, tick)
    await h.runner.fire_tick(spec, tick)  # the same tick again (e.g. after a restart)
    pongs = await h.log.query(EventQuery(types=["test.pong"]))
    assert [p.data["n"] for p in pongs] == [7]
    assert pongs[0].causationid is None
    assert pongs[0].correlationid == tick_envelope(spec, tick).correlationid
    [state] = [s for s in await h.log.sensors() if s.name == "minutely"]
    assert state.cursor == int(tick.timestamp())


async def test_sensor_job_request_is_validated(env: Env) -> None:
    @herald.job(name="add", executor="inline", registry=env.jobs)
    def add(a: int, b: int) -> int:
        return a + b

    @herald.sensor(on=Ping, registry=env.sensors, name="asker")
    def asker(msg: Ping, ctx: herald.SensorContext) -> None:
        ctx.run_job("add", {"a": msg.n, "b": "not a number"} if msg.n < 0 else {"a": msg.n, "b": 1})

    h = await env.start()
    await h.emit(Ping(n=-1))
    await h.emit(Ping(n=41))
    [notice] = await env.wait_for("sensor.deadlettered", 1)
    assert "invalid parameters for job 'add'" in notice.data["error"]
    [ok] = await env.wait_for("job.succeeded", 1)
    assert ok.data["result"] == 42
