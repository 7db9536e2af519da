"""Durable append rate of the SQLite event log vs the disk's raw fdatasync rate, same run.

    python bench/append_rate.py [--n 500] [--concurrency 64] [--batch 100] [--dir PATH]

* raw fdatasync: write a 256-byte record and ``os.fdatasync`` it, in a loop (the disk's ceiling
  for one durable write at a time);
* single: one ``append([event])`` at a time, each awaited (one transaction + fsync each);
* group commit: ``--concurrency`` producers appending one event each, concurrently; the writer
  thread commits whatever is queued in one transaction;
* batched: ``append(list of --batch events)`` — one transaction per call.

Goals (issue 2): single ≥ 0.8 x fdatasync; group commit ≥ 20 x single.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import report

from herald.bus import open_event_log
from herald.messages import Envelope, new_id


def event(i: int) -> Envelope:
    return Envelope(
        id=new_id(),
        type="bench.appended",
        source="bench",
        correlationid=new_id(),
        data={"i": i, "pad": "x" * 64},
    )


def fdatasync_rate(folder: Path, n: int) -> float:
    path = folder / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        record = b"r" * 256
        t0 = time.perf_counter()
        for _ in range(n):
            os.write(fd, record)
            os.fdatasync(fd)
        return n / (time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink()


def bare_sqlite_rate(folder: Path, n: int) -> float:
    """The peer: Python's sqlite3 alone, same pragmas, one INSERT + COMMIT per event."""
    import json
    import sqlite3

    conn = sqlite3.connect(folder / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE e (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, data TEXT)")
    try:
        t0 = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO e (seq, id, data) VALUES (?, ?, ?)",
                (i + 1, new_id(), json.dumps({"i": i, "pad": "x" * 64})),
            )
            conn.execute("COMMIT")
        return n / (time.perf_counter() - t0)
    finally:
        conn.close()


async def sqlite_rates(folder: Path, n: int, concurrency: int, batch: int) -> dict[str, float]:
    log = open_event_log(f"sqlite:///{folder / 'bench.db'}", synchronous="FULL")
    await log.start()
    try:
        for i in range(20):  # warm up: schema, connections, page cache
            await log.append([event(i)])

        t0 = time.perf_counter()
        for i in range(n):
            await log.append([event(i)])
        single = n / (time.perf_counter() - t0)

        total = max(n * 20, concurrency * 50)
        queue = list(range(total))

        async def producer() -> None:
            while queue:
                i = queue.pop()
                await log.append([event(i)])

        t0 = time.perf_counter()
        await asyncio.gather(*(producer() for _ in range(concurrency)))
        group = total / (time.perf_counter() - t0)

        rounds = max(20, n // 10)
        t0 = time.perf_counter()
        for r in range(rounds):
            await log.append([event(r * batch + j) for j in range(batch)])
        batched = rounds * batch / (time.perf_counter() - t0)
        return {"single": single, "group": group, "batched": batched}
    finally:
        await log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="sequential appends / fsyncs")
    ap.add_argument("--concurrency", type=int, default=64, help="concurrent producers")
    ap.add_argument("--batch", type=int, default=100, help="events per batched append")
    ap.add_argument("--dir", type=Path, default=None, help="folder on the disk to test")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="herald-bench-") as tmp:
        folder = Path(tmp)
        raw = fdatasync_rate(folder, args.n)
        bare = bare_sqlite_rate(folder, args.n)
        rates = asyncio.run(sqlite_rates(folder, args.n, args.concurrency, args.batch))
        raw_after = fdatasync_rate(folder, args.n)
    raw_mean = (raw + raw_after) / 2
    rows = [
        {"mode": "raw fdatasync (256 B)", "events/s": raw_mean, "x fdatasync": 1.0, "x single": ""},
        {
            "mode": "bare sqlite3 (peer): INSERT+COMMIT",
            "events/s": bare,
            "x fdatasync": bare / raw_mean,
            "x single": "",
        },
        {
            "mode": "SQLite single append",
            "events/s": rates["single"],
            "x fdatasync": rates["single"] / raw_mean,
            "x single": 1.0,
        },
        {
            "mode": f"SQLite group commit ({args.concurrency} producers)",
            "events/s": rates["group"],
            "x fdatasync": rates["group"] / raw_mean,
            "x single": rates["group"] / rates["single"],
        },
        {
            "mode": f"SQLite batched ({args.batch}/append)",
            "events/s": rates["batched"],
            "x fdatasync": rates["batched"] / raw_mean,
            "x single": rates["batched"] / rates["single"],
        },
    ]
    report(
        "Durable append rate (SQLite, synchronous=FULL, WAL)",
        rows,
        {"fdatasync_before": raw, "fdatasync_after": raw_after},
    )


if __name__ == "__main__":
    main()
