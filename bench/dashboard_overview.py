"""Server time of the dashboard's overview with a large event log (issue 8: < 300 ms at 100k).

    python bench/dashboard_overview.py [--events 100000] [--reps 30]

Fills a fresh SQLite event log with ``--events`` messages (10 types, 100 subjects, flows of 5),
starts Herald (built-in sensors and workers on), then times, in process over ASGI (server time,
no network), every request the overview page makes on load: the app shell ``/``, the latest 50
events, the sensors and the running/queued/failed jobs. The filtered queries a user types in the
filter boxes (type, subject, correlation id) are timed too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _common import pct, report

from herald.api import create_app
from herald.bootstrap import Herald
from herald.messages import Envelope, new_id
from herald.settings import Settings

KEY = "bench-key"
OVERVIEW = [
    "/",
    "/v1/messages?order=desc&limit=50",
    "/v1/sensors",
    "/v1/jobs?status=running&limit=10",
    "/v1/jobs?status=queued&limit=10",
    "/v1/jobs?status=failed&limit=10",
]


async def fill(h: Herald, n: int) -> str:
    corr = new_id()
    batch: list[Envelope] = []
    for i in range(n):
        if i % 5 == 0:
            corr = new_id()
        batch.append(
            Envelope(
                id=new_id(),
                type=f"bench.kind{i % 10}",
                source="bench",
                subject=f"subject-{i % 100}",
                correlationid=corr,
                data={"i": i, "pad": "x" * 64},
            )
        )
        if len(batch) == 2000:
            await h.log.append(batch)
            batch = []
    if batch:
        await h.log.append(batch)
    return corr


async def login(c: httpx.AsyncClient) -> None:
    form = (await c.get("/login")).text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    r = await c.post(
        "/login",
        content=f"api_key={KEY}&csrf={csrf}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 303, r.text


async def timed(c: httpx.AsyncClient, paths: list[str], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for p in paths:
            r = await c.get(p)
            assert r.status_code == 200, (p, r.text[:200])
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def main(events: int, reps: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="herald-bench-dash-"))
    h = Herald(Settings(home=home, database_url=f"sqlite:///{home / 'herald.db'}"))
    await h.log.start()
    t0 = time.perf_counter()
    corr = await fill(h, events)
    fill_s = time.perf_counter() - t0
    await h.log.close()
    h = Herald(Settings(home=home, database_url=f"sqlite:///{home / 'herald.db'}"))
    app = create_app(h, KEY)
    rows = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c,
    ):
        await login(c)
        cases = {
            "overview (all 6 requests)": OVERVIEW,
            "filter by type": ["/v1/messages?order=desc&limit=50&type=bench.kind3"],
            "filter by subject": ["/v1/messages?order=desc&limit=50&subject=subject-7"],
            "filter by correlation": [f"/v1/messages?order=desc&limit=50&correlationid={corr}"],
            "flow graph": [f"/v1/flows/{corr}"],
        }
        for name, paths in cases.items():
            await timed(c, paths, 2)  # warm up
            ms = await timed(c, paths, reps)
            rows.append(
                {
                    "case": name,
                    "p50_ms": round(pct(ms, 50), 1),
                    "p95_ms": round(pct(ms, 95), 1),
                    "max_ms": round(max(ms), 1),
                }
            )
    report(
        f"Dashboard overview server time, {events} events in SQLite",
        rows,
        {"events": events, "reps": reps, "fill_s": round(fill_s, 1)},
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args()
    asyncio.run(main(a.events, a.reps))
