"""Emit → job started latency for the ``local`` (subprocess) and ``inline`` executors.

    python bench/job_latency.py [--n 30] [--db sqlite|memory]

A message goes to a sensor that requests a job; we time from before ``emit`` to the committed
``job.started`` event and to the first line of the job body (wall clock; for ``local`` this
includes starting a fresh Python subprocess and importing the plugin).
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

from _common import pct, report

import herald
from herald.bus import EventQuery
from herald.settings import Settings

PLUGIN = str(Path(__file__).resolve().parent / "_job_plugin.py")


async def measure(url: str, home: Path, executor: str, n: int) -> dict[str, Any]:
    h = herald.Herald(Settings(home=home, database_url=url), load=[PLUGIN])
    await h.start()
    started_ms: list[float] = []
    body_ms: list[float] = []
    try:
        for i in range(-2, n):  # 2 warm-up rounds
            t0 = time.time()
            cause = await h.emit(h.catalog.validate("bench.work", {"i": i, "executor": executor}))
            deadline = time.monotonic() + 60
            while True:
                evs = await h.log.query(
                    EventQuery(correlationid=cause.correlationid, types=["job.succeeded"])
                )
                if evs:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {i} did not finish")
                await asyncio.sleep(0.002)
            [st] = await h.log.query(
                EventQuery(correlationid=cause.correlationid, types=["job.started"])
            )
            result = evs[0].data["result"]
            if i >= 0:
                started_ms.append((st.time.timestamp() - t0) * 1000)
                body_ms.append((result["started"] - t0) * 1000)
    finally:
        await h.stop()
    return {
        "executor": executor,
        "emit→job.started p50 ms": pct(started_ms, 50),
        "emit→job.started p99 ms": pct(started_ms, 99),
        "emit→job body p50 ms": pct(body_ms, 50),
        "emit→job body p99 ms": pct(body_ms, 99),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=30, help="jobs per executor")
    ap.add_argument("--db", choices=["sqlite", "memory"], default="sqlite")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        for executor in ("inline", "local"):
            home = Path(tmp) / executor
            url = f"sqlite:///{home}/h.db" if args.db == "sqlite" else "memory://"
            rows.append(asyncio.run(measure(url, home, executor, args.n)))
    report(f"Emit → job started ({args.db} event log)", rows)


if __name__ == "__main__":
    main()
