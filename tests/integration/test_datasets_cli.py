"""`herald datasets register` against a real `herald up` server (CLI → HTTP → sensor → job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Server

pytestmark = pytest.mark.slow
DATA = ROOT / "examples" / "data" / "facts-instruction.csv"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(
        tmp_path / "home", [], env={"HERALD_DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}"}
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERALD_HOME": str(server.home), "HERALD_URL": server.url}
    env.pop("HERALD_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "herald.cli.main", "datasets", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_register_wait_json_and_errors(server: Server, tmp_path: Path) -> None:
    r = cli(server, "register", "facts", str(DATA), "--validation-fraction", "0.1", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["uri"] == "datasets:/facts/1" and d["format"] == "instruction" and d["rows"] == 230

    r = cli(server, "register", "facts", str(DATA), "--validation-fraction", "0.1")
    assert r.returncode == 0, r.stderr
    assert "datasets:/facts/1" in r.stdout and "existing version" in r.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,completion\nq,a\n")
    r = cli(server, "register", "bad", str(bad))
    assert r.returncode == 1
    assert "was not registered" in r.stderr and "'messages' (chat)" in r.stderr

    r = cli(server, "register", "x", str(tmp_path / "missing.jsonl"))
    assert r.returncode == 1 and "does not exist here" in r.stderr
