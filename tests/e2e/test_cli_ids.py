"""Job ids can be typed back: whole in an 80-column table, and shortened to a unique prefix
(issue 14: ids were cut at 80 columns and ``herald jobs logs 0b1649`` said "no job")."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import pytest

from .test_cli_server import ROOT

pytestmark = pytest.mark.slow
JOBS = str(ROOT / "tests" / "integration" / "jobs_plugin.py")


def cli(server: Any, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERALD_URL": server.url, "HERALD_HOME": str(server.home)}
    env.update(COLUMNS=str(columns))
    env.pop("HERALD_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "herald.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_job_ids_are_whole_in_tables_and_unique_prefixes_work(server_factory: Any) -> None:
    server = server_factory([JOBS])
    server.start()
    with server.client() as c:
        ids = []
        for name, params in (("square", {"n": 3}), ("explode", {"reason": "x" * 200})):
            r = c.post("/v1/jobs", json={"name": name, "params": params, "executor": "inline"})
            assert r.status_code in (200, 201, 202), r.text
            ids.append(r.json()["id"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = [c.get(f"/v1/jobs/{i}").json()["status"] for i in ids]
            if all(s in ("succeeded", "failed") for s in done):
                break
            time.sleep(0.3)
    table = cli(server, "jobs")
    assert table.returncode == 0, table.stderr
    assert all(i in table.stdout for i in ids), table.stdout  # whole, at 80 columns
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
    square = ids[0]
    # ids are time-ordered: jobs made in the same second share their first characters
    common = ""
    for a, b in zip(*ids, strict=False):
        if a != b:
            break
        common += a
    unique = square[: len(common) + 2]
    logs = cli(server, "jobs", "logs", unique)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == "done"  # the ctx.log line of that job
    shown = cli(server, "jobs", "show", unique, "--json")
    assert shown.returncode == 0 and square in shown.stdout, shown.stderr
    unknown = cli(server, "jobs", "logs", "zzzzzzzz")
    assert unknown.returncode == 1 and "no job 'zzzzzzzz'" in unknown.stderr
    if len(common) >= 4:
        both = cli(server, "jobs", "logs", common)
        assert both.returncode == 1 and "is ambiguous" in both.stderr
        assert all(i in both.stderr for i in ids)
    short = cli(server, "jobs", "logs", square[:2])
    assert short.returncode == 1 and "at least 4 characters" in short.stderr
