"""Job overhead of the ``ray`` executor next to ``local``: submit → job succeeded, trivial job.

    python bench/ray_overhead.py [--n 20]

Starts a private single-node Ray cluster (``ray start --head --block``, 2 CPUs, dashboard off,
token auth off, its own temp dir), then submits ``--n`` trivial jobs per executor one
after another, alternating executors (after 2 warm-up rounds), and times, on the wall clock, submit → the job body's
first line and submit → ``job.succeeded`` committed. ``ray`` pays for a Ray task (a pooled Ray
worker) plus the same fresh ``python -m herald.jobs.child`` process as ``local``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import pct, report

import herald
from herald.bus import EventQuery
from herald.settings import Settings

PLUGIN = str(Path(__file__).resolve().parent / "_job_plugin.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def ray_cluster() -> Iterator[str]:
    tmp = Path(tempfile.mkdtemp(prefix="hray-", dir="/tmp"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "RAY_"))}
    env |= {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    ray = str(Path(sys.executable).with_name("ray"))
    cmd = [
        ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
        f"--ray-client-server-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}", "--num-cpus=2",
        "--object-store-memory=100000000", "--include-dashboard=false",
        "--disable-usage-stats", f"--temp-dir={tmp}",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    address = f"127.0.0.1:{port}"
    probe = (
        f"import ray; ray.init(address={address!r}, log_to_driver=False); "
        "assert ray.get(ray.remote(lambda: 1).remote(), timeout=60) == 1"
    )
    try:
        deadline = time.monotonic() + 180
        while subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True
        ).returncode:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the Ray cluster did not come up")
            time.sleep(1)
        yield address
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)


async def measure(home: Path, n: int, address: str) -> list[dict[str, Any]]:
    """One Herald with both executors; jobs alternate between them (same load for both)."""
    jobs: dict[str, Any] = {"lease_s": 10.0, "ray": {"enabled": True, "address": address}}
    settings = Settings(home=home, database_url=f"sqlite:///{home}/h.db", jobs=jobs)
    h = herald.Herald(settings, load=[PLUGIN])
    await h.start()
    body_ms: dict[str, list[float]] = {"local": [], "ray": []}
    done_ms: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        for i in range(-2, n):  # 2 warm-up rounds (joining the cluster, a warm Ray worker)
            for executor in ("local", "ray"):
                t0 = time.time()
                job = await h.submit_job("bench.stamp", {"i": i}, executor=executor)
                deadline = time.monotonic() + 120
                while True:
                    evs = await h.log.query(EventQuery(types=["job.succeeded"], limit=10000))
                    ok = [e for e in evs if e.data.get("job_id") == job.id]
                    if ok:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"job {i} on {executor} did not finish")
                    await asyncio.sleep(0.005)
                if i >= 0:
                    done_ms[executor].append((ok[0].time.timestamp() - t0) * 1000)
                    body_ms[executor].append((ok[0].data["result"]["started"] - t0) * 1000)
    finally:
        await h.stop()
    return [
        {
            "executor": ex,
            "submit→job body p50 ms": pct(body_ms[ex], 50),
            "submit→job body p90 ms": pct(body_ms[ex], 90),
            "submit→succeeded p50 ms": pct(done_ms[ex], 50),
            "submit→succeeded p90 ms": pct(done_ms[ex], 90),
        }
        for ex in ("local", "ray")
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="jobs per executor")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp, ray_cluster() as address:
        rows = asyncio.run(measure(Path(tmp), args.n, address))
    report("Job overhead: ray executor vs local (trivial job, sqlite event log)", rows)


if __name__ == "__main__":
    main()
