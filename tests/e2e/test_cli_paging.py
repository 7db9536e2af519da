"""CLI list commands page by cursor against a real `herald up`: one page plus a cursor hint on
stderr, ``--cursor`` for the next page, ``--all`` to follow every page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from herald.registry import Registry

from .test_cli_server import ROOT, herald_cli

JOBS = str(ROOT / "tests" / "integration" / "jobs_plugin.py")

pytestmark = pytest.mark.slow


def _cursor(stderr: str) -> str | None:
    m = re.search(r"--cursor (\S+)", stderr)
    return m.group(1) if m else None


def test_cli_lists_page_by_cursor(server_factory, tmp_path: Path) -> None:
    server = server_factory([JOBS])
    server.start()
    with server.client() as c:
        ids = [
            c.post("/v1/jobs", json={"name": "square", "params": {"n": i}}).json()["id"]
            for i in range(5)
        ]
        newest_first = [j["id"] for j in c.get("/v1/jobs").json()["data"]]
    assert sorted(newest_first) == sorted(ids)

    first = herald_cli(server, "jobs", "--limit", "2", "--json")
    assert [j["id"] for j in json.loads(first.stdout)] == newest_first[:2]  # stdout stays JSON
    cursor = _cursor(first.stderr)
    assert cursor and "--all" in first.stderr
    second = herald_cli(server, "jobs", "--limit", "2", "--cursor", cursor, "--json")
    assert [j["id"] for j in json.loads(second.stdout)] == newest_first[2:4]
    table = herald_cli(server, "jobs", "--limit", "2", "--cursor", cursor)
    assert newest_first[2] in table.stdout and newest_first[0] not in table.stdout
    everything = herald_cli(server, "jobs", "--limit", "2", "--all", "--json")
    assert [j["id"] for j in json.loads(everything.stdout)] == newest_first
    assert _cursor(everything.stderr) is None
    last = herald_cli(server, "jobs", "--limit", "5", "--json")
    assert len(json.loads(last.stdout)) == 5 and _cursor(last.stderr) is None

    bad = herald_cli(server, "jobs", "--cursor", "garbage", check=False)
    assert bad.returncode == 1 and "'cursor'" in bad.stderr and "Traceback" not in bad.stderr
    foreign = herald_cli(server, "runs", "list", "--cursor", cursor, check=False)
    assert foreign.returncode == 1 and "'jobs' listing" in foreign.stderr

    # registry lists: runs and models, seeded in the server's database
    reg = Registry(f"sqlite:///{server.home / 'herald.db'}")
    for i in range(3):
        reg.create_run(f"r{i}", name="sweep")
        reg.register_model_version(f"paged-{i}", artifact_uri="file:///m", kind="lora")
    reg.close()
    runs = herald_cli(server, "runs", "list", "--name", "sweep", "--limit", "2", "--json")
    page1 = [r["id"] for r in json.loads(runs.stdout)]
    cursor = _cursor(runs.stderr)
    assert len(page1) == 2 and cursor
    runs2 = herald_cli(server, "runs", "list", "--name", "sweep", "--cursor", cursor, "--json")
    page2 = [r["id"] for r in json.loads(runs2.stdout)]
    assert sorted(page1 + page2) == ["r0", "r1", "r2"]
    names = [
        m["name"]
        for m in json.loads(
            herald_cli(server, "models", "list", "-n", "1", "--all", "--json").stdout
        )
    ]
    assert [n for n in names if n.startswith("paged-")] == ["paged-0", "paged-1", "paged-2"]
    assert names == sorted(names)
    reg = Registry(f"sqlite:///{server.home / 'herald.db'}")
    for _ in range(2):
        reg.register_model_version("paged-0", artifact_uri="file:///m", kind="lora")
    reg.close()
    versions = herald_cli(server, "models", "versions", "paged-0", "-n", "2", "--json")
    assert [v["version"] for v in json.loads(versions.stdout)] == [3, 2]
    cursor = _cursor(versions.stderr)
    assert cursor
    older = herald_cli(server, "models", "versions", "paged-0", "--cursor", cursor, "--json")
    assert [v["version"] for v in json.loads(older.stdout)] == [1]
    assert _cursor(older.stderr) is None
    table = herald_cli(server, "models", "versions", "paged-0", "--all").stdout
    assert "version" in table and "lora" in table
    missing = herald_cli(server, "models", "versions", "nope", check=False)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    evals = herald_cli(server, "eval", "list", "--limit", "1", "--json")
    assert json.loads(evals.stdout) == [] and _cursor(evals.stderr) is None
