"""Fault test: a 3-node JetStream cluster (real nats-server processes) and PostgreSQL.

Two Herald processes' worth of event logs append events while a shared durable consumer
handles them; mid-run the stream leader is SIGKILLed. Every append that was acknowledged
(committed) must reach the stream exactly once and be handled exactly once: 0 lost, 0 doubled.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter

import pytest

from herald.bus import Outcome, open_event_log
from herald.bus.nats import NatsEventLog
from herald.messages import Envelope
from tests.natsfixtures import NatsCluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TOTAL = 600


async def _open(database_url: str, bus_url: str) -> NatsEventLog:
    log = open_event_log(database_url, bus_url=bus_url)
    assert isinstance(log, NatsEventLog)
    await log.start()
    return log


async def test_killing_the_stream_leader_loses_and_doubles_nothing(
    fresh_postgres_url: str, nats_cluster: NatsCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    bus = f"{nats_cluster.url}?stream=FAULT&replicas=3&ack_wait=5&duplicate_window=120"
    producer = await _open(fresh_postgres_url, bus)
    worker = await _open(fresh_postgres_url, bus)
    calls: Counter[str] = Counter()
    fresh: list[str] = []

    async def handle(e: Envelope) -> None:
        calls[e.id] += 1
        stored = await worker.commit(Outcome(sensor="fault", event_id=e.id, event_seq=e.seq or 0))
        if stored is not None:  # None: this event's outcome was already committed
            fresh.append(e.id)

    consumer = worker.consume("fault", handle, batch=16)
    await consumer.start()
    acked: list[str] = []
    killed: list[str] = []
    try:
        for i in range(TOTAL):
            [stored] = await producer.append([Envelope(type="fault.tick", data={"i": i})])
            acked.append(stored.id)  # append returned: the event is committed
            if i == TOTAL // 3:
                # let the relay get some way in, then kill the stream leader mid-publishing
                while producer.relayed < TOTAL // 4:
                    await asyncio.sleep(0.01)
                info = await producer._js.stream_info("FAULT")
                leader = info.cluster.leader
                assert leader, "the stream has no leader"
                nats_cluster.node(leader).kill()
                killed.append(leader)
            if i % 10 == 0:
                await asyncio.sleep(0.005)  # keep publishing spread over the failover

        deadline = asyncio.get_running_loop().time() + 120
        while await producer.relay_backlog() > 0 or len(fresh) < TOTAL:
            assert asyncio.get_running_loop().time() < deadline, (
                f"backlog {await producer.relay_backlog()}, handled {len(fresh)}/{TOTAL}"
            )
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # any late redelivery would show up now

        assert killed, "no leader was killed"
        # 0 lost: every acknowledged append was handled ...
        assert set(fresh) == set(acked) and len(acked) == TOTAL
        # ... 0 doubled: each outcome committed once, and the stream holds each event once
        assert len(fresh) == len(set(fresh)) == TOTAL
        ids = await _stream_ids(worker)
        assert len(ids) == len(set(ids)) == TOTAL and set(ids) == set(acked)
        redelivered = sum(n - 1 for n in calls.values())
        print(f"leader {killed[0]} killed; handler redeliveries absorbed: {redelivered}")
    finally:
        await consumer.stop()
        await worker.close()
        await producer.close()


async def _stream_ids(log: NatsEventLog) -> list[str]:
    info = await log._js.stream_info(log.bus.stream)
    ids: list[str] = []
    sub = await log._js.subscribe(log.bus.events_subject, ordered_consumer=True)
    try:
        while len(ids) < info.state.messages:
            msg = await sub.next_msg(timeout=10)
            ids.append(json.loads(msg.data)["id"])
    finally:
        await sub.unsubscribe()
    return ids
