"""PostgreSQL + NATS JetStream as the bus, against real servers (pgserver, nats-server).

Outbox: nothing committed is lost when the relay dies between commit and publish; the bus lost
mid-run: appends still commit, consumers recover and get every event once; shared durable
consumers split the work, redeliver a dead worker's message, and heartbeats keep long handlers'
messages from being redelivered.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herald.bus import Outcome, open_event_log
from herald.bus.nats import BusConfig, NatsEventLog
from herald.errors import BackendError, ConfigurationError
from herald.messages import Envelope
from tests.natsfixtures import NatsServer, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def ev(n: int, type_: str = "t.happened") -> Envelope:
    return Envelope(type=type_, data={"n": n})


async def open_log(database_url: str, bus_url: str) -> NatsEventLog:
    log = open_event_log(database_url, bus_url=bus_url)
    assert isinstance(log, NatsEventLog)
    await log.start()
    return log


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.1)


async def stream_ids(log: NatsEventLog) -> list[str]:
    """Every message id in the stream, in stream order (read with an ordered consumer)."""
    info = await log._js.stream_info(log.bus.stream)
    total = info.state.messages
    ids: list[str] = []
    if total == 0:
        return ids
    sub = await log._js.subscribe(log.bus.events_subject, ordered_consumer=True)
    try:
        while len(ids) < total:
            msg = await sub.next_msg(timeout=10)
            ids.append(json.loads(msg.data)["id"])
    finally:
        await sub.unsubscribe()
    return ids


class Recorder:
    """A consumer handler that commits an Outcome per event (effectively-once) and counts calls."""

    def __init__(self, log: NatsEventLog, sensor: str) -> None:
        self.log = log
        self.sensor = sensor
        self.calls: Counter[str] = Counter()
        self.fresh: list[str] = []

    async def __call__(self, e: Envelope) -> None:
        self.calls[e.id] += 1
        stored = await self.log.commit(
            Outcome(sensor=self.sensor, event_id=e.id, event_seq=e.seq or 0)
        )
        if stored is not None:
            self.fresh.append(e.id)


# bad input ---------------------------------------------------------------------------------


async def test_unreachable_bus_names_the_url_and_what_to_check(fresh_postgres_url: str) -> None:
    port = free_port()
    log = open_event_log(fresh_postgres_url, bus_url=f"nats://127.0.0.1:{port}")
    with pytest.raises(BackendError) as err:
        await log.start()
    msg = str(err.value)
    assert f"nats://127.0.0.1:{port}" in msg and "-js" in msg and "HERALD_BUS_URL" in msg


async def test_server_without_jetstream_is_a_clear_error(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    import subprocess

    from tests.natsfixtures import nats_server_bin

    port, mport = free_port(), free_port()
    proc = subprocess.Popen(
        [nats_server_bin(), "-a", "127.0.0.1", "-p", str(port), "-m", str(mport)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{mport}/healthz", timeout=1)
                break
            except Exception:
                await asyncio.sleep(0.05)
        log = open_event_log(fresh_postgres_url, bus_url=f"nats://127.0.0.1:{port}")
        with pytest.raises(BackendError, match=r"JetStream is not available.*-js"):
            await log.start()
    finally:
        proc.terminate()
        proc.wait(10)


def test_bad_bus_urls_are_rejected_with_the_reason() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown option.*replica"):
        BusConfig.parse("nats://h:4222?replica=3")
    with pytest.raises(ConfigurationError, match="replicas must be 1, 3 or 5"):
        BusConfig.parse("nats://h:4222?replicas=2")
    with pytest.raises(ConfigurationError, match="not a NATS URL"):
        BusConfig.parse("http://h:4222")
    with pytest.raises(ConfigurationError, match="needs PostgreSQL"):
        open_event_log("sqlite:///x.db", bus_url="nats://h:4222")
    cfg = BusConfig.parse("nats://u:secret@a:4222,b:4222?stream=S&replicas=3&ack_wait=5")
    assert cfg.servers == ["nats://u:secret@a:4222", "nats://u:secret@b:4222"]  # one cluster
    assert (cfg.stream, cfg.replicas, cfg.ack_wait_s) == ("S", 3, 5.0)
    assert "secret" not in cfg.safe_url
    assert cfg.subject("acme.order placed") == "herald.events.acme.order_placed"


# the outbox --------------------------------------------------------------------------------


async def test_relay_death_between_commit_and_publish_loses_nothing(
    fresh_postgres_url: str, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process A commits events but its relay dies before publishing (first batch) and after
    publishing but before recording it (second batch); process B's relay takes over: every
    committed event reaches the stream exactly once (Nats-Msg-Id deduplication)."""
    a = await open_log(fresh_postgres_url, nats_url)
    published_unrecorded = asyncio.Event()
    try:
        # A's relay: publishes nothing at first (dies right after the commit) ...
        real_pending = a._relay_pending
        mode = {"publish": False}

        async def crashing_pending(cursor: int) -> int:
            if not mode["publish"]:
                raise ConnectionError("relay died before publishing")

            async def no_save(seq: int) -> None:
                published_unrecorded.set()
                raise ConnectionError("relay died after the PubAck, before recording it")

            a._save_relay_cursor = no_save  # type: ignore[method-assign]
            return await real_pending(cursor)

        monkeypatch.setattr(a, "_relay_pending", crashing_pending)
        first = await a.append([ev(i) for i in range(40)])
        await asyncio.sleep(0.5)
        assert await a.relay_backlog() == 40
        assert (await a._js.stream_info(a.bus.stream)).state.messages == 0
        # ... then publishes the batch but dies before moving the relay cursor
        mode["publish"] = True
        second = await a.append([ev(i) for i in range(40, 60)])
        await asyncio.wait_for(published_unrecorded.wait(), 30)
        assert (await a._js.stream_info(a.bus.stream)).state.messages == 60
        assert await a.relay_backlog() == 60
    finally:
        for t in a._tasks:  # A dies: no clean shutdown of its relay
            t.cancel()
        await a.close()
    b = await open_log(fresh_postgres_url, nats_url)
    try:
        await eventually(lambda: _backlog_zero(b))
        ids = await stream_ids(b)
        assert sorted(ids) == sorted(e.id for e in first + second)
        assert len(ids) == len(set(ids)) == 60
    finally:
        await b.close()


async def test_the_relay_does_not_count_as_a_sensor_owning_worker(
    fresh_postgres_url: str, nats_url: str
) -> None:
    """`herald api` relays too; workers share sensors by counting live owners (presence locks),
    so a process that only relays must hold no presence lock, or sensors would go unowned."""
    import psycopg

    from herald.bus.postgres import PRESENCE_LOCK_SPACE

    a = await open_log(fresh_postgres_url, nats_url)
    try:
        await a.append([ev(1)])
        await eventually(lambda: _backlog_zero(a), timeout=30)
        assert a._relay_owned
        with psycopg.connect(fresh_postgres_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = %s::oid",
                (PRESENCE_LOCK_SPACE,),
            ).fetchone()
        assert row is not None and row[0] == 0
    finally:
        await a.close()


async def _backlog_zero(log: NatsEventLog) -> bool:
    return await log.relay_backlog() == 0


# the bus lost mid-run ---------------------------------------------------------------------


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    srv = NatsServer(tmp_path / "nats", "own").start()
    yield srv
    srv.stop()


async def test_bus_lost_mid_run_recovers_without_losing_events(
    fresh_postgres_url: str, own_nats: NatsServer
) -> None:
    bus = f"{own_nats.url}?stream=LOST&ack_wait=2"
    a = await open_log(fresh_postgres_url, bus)
    b = await open_log(fresh_postgres_url, bus)  # a second worker process
    rec = Recorder(b, "lost")
    consumer = b.consume("lost-consumer", rec)
    await consumer.start()
    try:
        before = await a.append([ev(i) for i in range(50)])
        await eventually(lambda: _handled(rec, 50))
        # B's wait() is woken through JetStream (B does not LISTEN for wake-ups)
        head = await b.head()
        waiter = asyncio.create_task(b.wait(head, timeout=120))
        await asyncio.sleep(0.2)
        await a.append([ev(-1)])
        assert await asyncio.wait_for(waiter, 30) >= head + 1

        own_nats.kill()  # the bus dies mid-run
        during = await a.append([ev(i) for i in range(50, 100)])  # still committed
        assert await a.relay_backlog() >= 50
        # wait() falls back to the database head when the bus is silent
        h = await a.head()
        assert await b.wait(h - 1, timeout=0.5) >= h
        await asyncio.sleep(1.0)
        own_nats.start()  # same port, same store
        after = await a.append([ev(i) for i in range(100, 120)])
        await eventually(lambda: _backlog_zero(a))
        await eventually(lambda: _handled(rec, 121))
        committed_ids = {e.id for e in before + during + after} | {
            e.id for e in await a.read(0, 1000)
        }
        assert set(rec.fresh) == committed_ids
        assert len(rec.fresh) == len(set(rec.fresh)) == 121
        ids = await stream_ids(a)
        assert len(ids) == len(set(ids)) == 121
    finally:
        await consumer.stop()
        await b.close()
        await a.close()


async def test_a_stream_lost_with_the_bus_storage_is_recreated(
    fresh_postgres_url: str, nats_url: str
) -> None:
    """A NATS restarted without its storage has no stream: the relay recreates it and the
    consumer its durable; events committed from then on flow again (the database has all)."""
    a = await open_log(fresh_postgres_url, nats_url)
    rec = Recorder(a, "lost-storage")
    consumer = a.consume("lost-storage", rec)
    await consumer.start()
    try:
        before = await a.append([ev(i) for i in range(3)])
        await eventually(lambda: _handled(rec, 3), timeout=30)
        await a._js.delete_stream(a.bus.stream)  # the bus forgets everything
        after = await a.append([ev(i) for i in range(3, 8)])
        await eventually(lambda: _handled(rec, 8), timeout=60)
        assert set(rec.fresh) == {e.id for e in before + after}
        assert len(rec.fresh) == 8
    finally:
        await consumer.stop()
        await a.close()


async def _handled(rec: Recorder, n: int) -> bool:
    return len(rec.fresh) >= n


# shared durable consumers -----------------------------------------------------------------


@pytest.fixture
async def two_workers(
    fresh_postgres_url: str, nats_url: str
) -> AsyncIterator[tuple[NatsEventLog, NatsEventLog]]:
    url = nats_url + "&ack_wait=1"
    a = await open_log(fresh_postgres_url, url)
    b = await open_log(fresh_postgres_url, url)
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()


async def test_workers_share_a_durable_consumer_and_handle_each_event_once(
    two_workers: tuple[NatsEventLog, NatsEventLog],
) -> None:
    a, b = two_workers
    recs = []
    for log in (a, b):
        rec = Recorder(log, "share")
        inner = rec.__call__

        async def slow(e: Envelope, inner: Any = inner) -> None:
            await asyncio.sleep(0.005)
            await inner(e)

        c = log.consume("sharers", slow, batch=4)
        await c.start()
        recs.append(rec)
    events = await a.append([ev(i) for i in range(200)])
    await eventually(lambda: _total(recs, 200))
    calls = recs[0].calls + recs[1].calls
    assert set(calls) == {e.id for e in events}
    assert max(calls.values()) == 1  # no event handled twice
    assert len(recs[0].fresh) > 0 and len(recs[1].fresh) > 0  # both did work


async def _total(recs: list[Recorder], n: int) -> bool:
    return sum(len(r.fresh) for r in recs) >= n


async def test_dead_workers_message_is_redelivered_to_another(
    two_workers: tuple[NatsEventLog, NatsEventLog],
) -> None:
    a, b = two_workers
    got_it = asyncio.Event()

    async def dies(e: Envelope) -> None:
        got_it.set()
        await asyncio.Event().wait()  # hangs until its process dies, never acks

    ca = a.consume("failover", dies, batch=1)
    await ca.start()
    [event] = await a.append([ev(1)])
    await asyncio.wait_for(got_it.wait(), 30)
    await a._nc.close()  # worker A's connection dies with the message unacknowledged
    await ca.stop()
    rec = Recorder(b, "failover")
    cb = b.consume("failover", rec, batch=1)
    await cb.start()
    await eventually(lambda: _handled(rec, 1), timeout=30)  # after ack_wait (1 s)
    assert rec.fresh == [event.id]


async def test_long_handler_heartbeats_so_its_message_is_not_redelivered(
    two_workers: tuple[NatsEventLog, NatsEventLog],
) -> None:
    """ack_wait is 1 s; the handler takes 3.5 s; a second worker stands by on the same
    consumer. Without in_progress() heartbeats the message would be redelivered to it."""
    a, b = two_workers
    calls: Counter[str] = Counter()

    async def long(e: Envelope) -> None:
        calls[e.id] += 1
        await asyncio.sleep(3.5)

    for log in (a, b):
        c = log.consume("long", long, batch=1)
        await c.start()
    [event] = await a.append([ev(1)])
    await eventually(lambda: _called(calls, event.id), timeout=30)
    await asyncio.sleep(5.0)
    info = await a._js.consumer_info(a.bus.stream, "long")
    assert calls == {event.id: 1}
    assert info.num_redelivered == 0 and info.num_ack_pending == 0


async def _called(calls: Counter[str], key: str) -> bool:
    return calls[key] >= 1


async def test_failing_handler_is_retried_then_given_up(
    two_workers: tuple[NatsEventLog, NatsEventLog],
) -> None:
    a, _ = two_workers
    calls: Counter[str] = Counter()

    async def broken(e: Envelope) -> None:
        calls[e.id] += 1
        raise RuntimeError("boom")

    c = a.consume("broken", broken, max_deliver=3, batch=1)
    await c.start()
    [event] = await a.append([ev(1)])
    await eventually(lambda: _count(calls, event.id, 3), timeout=30)
    await asyncio.sleep(1.5)
    assert calls[event.id] == 3 and c.failed == 3


async def _count(calls: Counter[str], key: str, n: int) -> bool:
    return calls[key] >= n
