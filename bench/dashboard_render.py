"""Dashboard overview with 100k events: server time of its requests, and its load in Chromium.

    python bench/dashboard_render.py [--events 100000] [--reps 30] [--browser-reps 10]

1. Fills a fresh SQLite event log with ``--events`` messages (10 types, 100 subjects, flows of 5;
   the filler of ``bench/dashboard_overview.py``) plus a deployment-like alert every 10,000.
2. Server time, in process over ASGI (no network): every request the overview page makes on load
   — the app shell, the log head, the latest 50 events, sensors, running/queued/failed jobs,
   deployments and recent alerts — each alone and all together (sequentially, so the sum is an
   upper bound of what the browser waits for; it sends them concurrently).
3. Page load in a real headless Chromium (/usr/bin/chromium) against ``herald up`` on that home:
   from navigation start until the 50 event rows, the deployments table and the alerts list are
   drawn (``--browser-reps`` loads after one warm-up), plus the slowest API request's server
   time as the browser saw it (Resource Timing ``responseStart - requestStart``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _common import ROOT, pct, report
from dashboard_overview import fill, login

from herald.api import create_app
from herald.bootstrap import Herald
from herald.messages import Envelope, new_id
from herald.settings import Settings

KEY = "bench-key"
REQUESTS = [
    "/",
    "/v1/messages?limit=1&order=desc",
    "/v1/messages?order=desc&limit=50",
    "/v1/sensors",
    "/v1/jobs?status=running&limit=10",
    "/v1/jobs?status=queued&limit=10",
    "/v1/jobs?status=failed&limit=10",
    "/v1/deployments",
    "/v1/dashboard/alerts?limit=8",
]


async def add_alerts(h: Herald, n: int) -> None:
    alerts = [
        Envelope(
            id=new_id(),
            type="slo.breached",
            source="bench",
            subject="models/bench",
            correlationid=new_id(),
            data={"rule": "latency-p95", "model": "bench", "metric": "latency_p95", "value": 12.0},
        )
        for _ in range(max(1, n // 10_000))
    ]
    await h.log.append(alerts)


async def timed(c: httpx.AsyncClient, paths: list[str], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for p in paths:
            r = await c.get(p)
            assert r.status_code == 200, (p, r.text[:200])
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def server_time(home: Path, events: int, reps: int) -> tuple[list[dict[str, object]], float]:
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'herald.db'}")
    h = Herald(settings)
    await h.log.start()
    t0 = time.perf_counter()
    await fill(h, events)
    await add_alerts(h, events)
    fill_s = time.perf_counter() - t0
    await h.log.close()
    h = Herald(Settings(home=home, database_url=f"sqlite:///{home / 'herald.db'}"))
    app = create_app(h, KEY)
    rows: list[dict[str, object]] = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c,
    ):
        await login(c)
        cases = {f"all {len(REQUESTS)} overview requests": REQUESTS} | {p: [p] for p in REQUESTS}
        for name, paths in cases.items():
            await timed(c, paths, 2)  # warm up
            ms = await timed(c, paths, reps)
            rows.append(
                {
                    "case": f"server: {name}",
                    "p50_ms": round(pct(ms, 50), 1),
                    "p95_ms": round(pct(ms, 95), 1),
                    "max_ms": round(max(ms), 1),
                }
            )
    return rows, fill_s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser_time(home: Path, reps: int) -> list[dict[str, object]]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HERALD_HOME": str(home), "HERALD_API_KEY": KEY}
    env["HERALD_DATABASE_URL"] = f"sqlite:///{home / 'herald.db'}"
    log = (home / "bench-server.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "herald.cli.main", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"herald up exited {proc.returncode}; see {home}/bench-server.log")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("herald up did not become ready in 120 s")
            time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(60_000)
            page.goto(url + "/login")
            page.fill("input[name=api_key]", KEY)
            page.click("button[type=submit]")
            page.wait_for_selector("#events tr")
            loads: list[float] = []
            slowest: list[float] = []
            for i in range(reps + 1):
                page.goto("about:blank")
                t0 = time.perf_counter()
                page.goto(url + "/#/")
                page.wait_for_function(
                    "() => document.querySelectorAll('#events tr').length >= 50"
                    " && document.querySelector('#overview-deployments tr')"
                    " && document.querySelector('#overview-alerts li')"
                )
                ms = (time.perf_counter() - t0) * 1000
                api_ms = page.evaluate(
                    "() => Math.max(...performance.getEntriesByType('resource')"
                    ".filter(e => e.name.includes('/v1/') && !e.name.includes('/stream'))"
                    ".map(e => e.responseStart - e.requestStart))"
                )
                if i:  # the first load warms Chromium's module cache
                    loads.append(ms)
                    slowest.append(float(api_ms))
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
    return [
        {
            "case": "Chromium: navigation → 50 rows + deployments + alerts drawn",
            "p50_ms": round(pct(loads, 50), 1),
            "p95_ms": round(pct(loads, 95), 1),
            "max_ms": round(max(loads), 1),
        },
        {
            "case": "Chromium: slowest /v1 request of the load (server, as seen by the browser)",
            "p50_ms": round(pct(slowest, 50), 1),
            "p95_ms": round(pct(slowest, 95), 1),
            "max_ms": round(max(slowest), 1),
        },
    ]


def main(events: int, reps: int, browser_reps: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="herald-bench-render-"))
    rows, fill_s = asyncio.run(server_time(home, events, reps))
    if browser_reps:
        rows += browser_time(home, browser_reps)
    report(
        f"Dashboard overview with {events} events in SQLite: server time and Chromium load",
        rows,
        {"events": events, "reps": reps, "browser_reps": browser_reps, "fill_s": round(fill_s, 1)},
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--browser-reps", type=int, default=10, help="0 skips the browser part")
    a = ap.parse_args()
    main(a.events, a.reps, a.browser_reps)
