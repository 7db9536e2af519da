"""Cron sensors under scale-out (issue 14): one ``herald api`` and two ``herald worker`` processes
on one PostgreSQL. A two-second cron sensor fires exactly once per tick — no tick twice, none
missed — while the workers split the sensors (the first one hands sensors over when the second
joins) and after the owner of the cron sensor is SIGKILLed."""

from __future__ import annotations

import itertools
import subprocess
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_scaleout_workers import start_worker

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PLUGIN = """
import os
import herald


class Ticked(herald.Message, type="test.cron.ticked"):
    tick: str


@herald.schedule("* * * * * */2", name="every-two-seconds")
def every_two_seconds(ctx: herald.SensorContext) -> Ticked:
    tick = str(ctx.event.data["tick"])
    fd = os.open(os.environ["TICKS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{os.getpid()} {tick}\\n".encode())
    finally:
        os.close(fd)
    return Ticked(tick=tick)
"""


def ticks(c: Any) -> list[str]:
    got = c.get("/v1/messages", params={"type": "test.cron.ticked", "limit": 1000})
    assert got.status_code == 200, got.text
    return [e["data"]["tick"] for e in got.json()["data"]]


def runs(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    return [(int(p), t) for p, t in (line.split() for line in path.read_text().splitlines())]


def wait_ticks(c: Any, n: int, workers: dict[str, Any], logs: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while len(ticks(c)) < n:
        for name, p in workers.items():
            assert p.poll() is None or name == "killed", (logs / name / f"{name}.log").read_text()
        assert time.monotonic() < deadline, f"only {len(ticks(c))} of {n} ticks in {timeout}s"
        time.sleep(0.25)


def assert_every_tick_once(fired: list[str]) -> None:
    counts = Counter(fired)
    assert max(counts.values()) == 1, [t for t, k in counts.items() if k > 1]  # no double fire
    times = sorted(datetime.fromisoformat(t) for t in counts)
    gaps = [(a, b) for a, b in itertools.pairwise(times) if b - a != timedelta(seconds=2)]
    assert not gaps, f"missed ticks between {gaps}"  # none missed from the first to the last


def test_a_cron_sensor_fires_once_per_tick_across_postgres_workers(
    server_factory: Any, fresh_postgres_url: str, tmp_path: Path
) -> None:
    plugin = tmp_path / "cron_counted.py"
    plugin.write_text(PLUGIN)
    log_path = tmp_path / "ticks.log"
    env = {
        "HERALD_DATABASE_URL": fresh_postgres_url,
        "HERALD_API_KEY": "sk-cron-" + uuid.uuid4().hex,
        "HERALD_SENSORS__OWNERSHIP_RETRY_S": "0.5",
        "TICKS_LOG": str(log_path),
    }
    api = server_factory([str(plugin)], command="api", **env)
    api.start()
    workers = {"w1": start_worker(tmp_path / "w1", env, plugin, "w1")}
    try:
        with api.client() as c:
            wait_ticks(c, 3, workers, tmp_path)  # w1 alone owns every sensor
            # w2 joins: sensors are handed over to it, the cron sensor may be among them
            workers["w2"] = start_worker(tmp_path / "w2", env, plugin, "w2")
            wait_ticks(c, len(ticks(c)) + 8, workers, tmp_path)
            before_kill = runs(log_path)
            assert_every_tick_once(ticks(c))
            assert_every_tick_once([t for _, t in before_kill])  # one live worker ran each tick
            # SIGKILL the cron sensor's owner: the other worker takes over, catching up the tick
            owner = before_kill[-1][0]
            [victim] = [n for n, p in workers.items() if p.pid == owner]
            workers[victim].kill()
            workers[victim].wait(10)
            workers["killed"] = workers.pop(victim)
            wait_ticks(c, len(ticks(c)) + 5, workers, tmp_path)
            assert_every_tick_once(ticks(c))
            after = runs(log_path)[len(before_kill) :]
            [survivor] = [p.pid for n, p in workers.items() if n != "killed"]
            assert after and {pid for pid, _ in after} <= {owner, survivor}
            assert any(pid == survivor for pid, _ in after)
    finally:
        for p in workers.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
