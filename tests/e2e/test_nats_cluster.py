"""End to end on PostgreSQL + NATS JetStream (real nats-server processes).

Fault test: on a 3-node JetStream cluster, one process appends events while another handles
them through a shared durable consumer; mid-run the stream leader is SIGKILLed. Every append
that was acknowledged (committed) must reach the stream exactly once and be handled exactly
once: 0 lost, 0 doubled. Then the real roles (`herald api`, two `herald worker`s) with
HERALD_BUS_URL, a worker SIGKILLed midway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from herald.bus import Outcome, open_event_log
from herald.bus.nats import NatsEventLog
from herald.messages import Envelope
from tests.e2e.test_orders_sigkill import all_of_type, check_exactly_once, post_orders
from tests.e2e.test_scaleout_workers import PLUGIN, handled, start_worker
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
                deadline = asyncio.get_running_loop().time() + 120
                while producer.relayed + worker.relayed < TOTAL // 4:  # either may be the relay
                    assert asyncio.get_running_loop().time() < deadline, "the relay is stuck"
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


def test_api_and_two_workers_on_postgres_and_nats(
    server_factory: Any, fresh_postgres_url: str, nats_url: str, tmp_path: Path
) -> None:
    """The real roles with HERALD_BUS_URL: `herald api` appends, the outbox relay publishes,
    two `herald worker`s are woken through JetStream; the sensor's owner is SIGKILLed midway
    and the survivor takes over. 300 orders → 300 shipped, each exactly once, all on the bus."""
    import asyncio as aio

    plugin = tmp_path / "orders_counted.py"
    plugin.write_text(PLUGIN)
    log_path = tmp_path / "handled.log"
    env = {
        "HERALD_DATABASE_URL": fresh_postgres_url,
        "HERALD_BUS_URL": nats_url,
        "HERALD_API_KEY": "sk-nats-" + uuid.uuid4().hex,
        "HERALD_SENSORS__OWNERSHIP_RETRY_S": "0.5",
        "HANDLED_LOG": str(log_path),
    }
    api = server_factory([str(plugin)], command="api", **env)
    api.start()
    workers = {name: start_worker(tmp_path / name, env, plugin, name) for name in ("w1", "w2")}
    try:
        deadline = time.monotonic() + 120
        for name, p in workers.items():
            logfile = tmp_path / name / f"{name}.log"
            while "worker running on" not in logfile.read_text():
                assert p.poll() is None, logfile.read_text()[-3000:]
                assert time.monotonic() < deadline, f"{name} did not start"
                time.sleep(0.1)
        orders = [(str(uuid.uuid4()), f"o-{i}") for i in range(300)]
        with api.client() as c:
            unacked: list[str] = []
            poster = threading.Thread(
                target=lambda: unacked.extend(post_orders(c, orders, threading.Event()))
            )
            poster.start()
            deadline = time.monotonic() + 120
            while len(handled(log_path)) < 60:
                assert time.monotonic() < deadline, "no worker handled orders"
                time.sleep(0.02)
            # workers share sensors: kill the one running this sensor now
            owner_pid = handled(log_path)[-1][0]
            [victim] = [n for n, p in workers.items() if p.pid == owner_pid]
            workers[victim].kill()
            workers[victim].wait(10)
            poster.join(120)
            assert not poster.is_alive() and unacked == []
            check_exactly_once(c, orders)
            shipped = all_of_type(c, "acme.order.shipped")
        assert len(shipped) == 300
        runs = handled(log_path)
        assert {o for _, o in orders} == {o for _, o in runs}
        assert len({pid for pid, _ in runs}) == 2  # the survivor took over

        import psycopg

        with psycopg.connect(fresh_postgres_url) as conn:  # the roles' own relay published
            row = conn.execute("SELECT max(published_seq) FROM herald_outbox_relay").fetchone()
        assert row is not None and (row[0] or 0) >= 600

        async def bus_ids() -> tuple[set[str], int]:
            log = await _open(fresh_postgres_url, nats_url)
            try:
                deadline = aio.get_running_loop().time() + 60
                while await log.relay_backlog() > 0:
                    assert aio.get_running_loop().time() < deadline, "relay did not catch up"
                    await aio.sleep(0.2)
                stored = {e.id for e in await log.read(0, 100_000)}
                ids = await _stream_ids(log)
                assert len(ids) == len(set(ids))  # nothing twice on the bus
                return stored - set(ids), len(ids)
            finally:
                await log.close()

        missing, on_bus = aio.run(bus_ids())
        assert missing == set() and on_bus >= 600  # every committed event is on the bus
    finally:
        for p in workers.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
