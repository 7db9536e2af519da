"""``herald flow`` prints a job's progress messages as one line (the API's collapsed graph);
``herald flow --json`` keeps every message, as the API does by default."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from herald.api.flowgraph import collapse_progress
from herald.cli import common
from herald.cli import events as cli_events
from herald.cli import main as cli_main
from herald.client import Client

CID = "01a25100-6f61-7cae-913e-dfb77f2225c0"
STEPS = 100


def raw_graph() -> dict[str, Any]:
    root = {"id": "m0", "kind": "message", "type": "finetune.requested", "time": "t0", "data": {}}
    job = {"id": "job:j1", "kind": "job", "type": "finetune", "status": "succeeded", "attempt": 1}
    progress = [
        {
            "id": f"p{i}",
            "kind": "message",
            "type": "job.progressed",
            "time": f"t{i}",
            "data": {"job_id": "j1", "progress": i / STEPS, "message": f"step {i}/{STEPS}"},
        }
        for i in range(1, STEPS + 1)
    ]
    done = {"id": "m9", "kind": "message", "type": "finetune.completed", "time": "t9", "data": {}}
    edges = [
        {"from": "m0", "to": "job:j1", "kind": "started"},
        *({"from": "job:j1", "to": p["id"], "kind": "reported"} for p in progress),
        {"from": "job:j1", "to": "m9", "kind": "produced"},
    ]
    nodes = [root, job, *progress, done]
    for n in nodes:
        n.setdefault("correlationid", CID)
    return {"correlationid": CID, "nodes": nodes, "edges": edges}


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/v1/flows/{CID}":
            mode = request.url.params.get("progress", "all")
            seen.append(mode)
            graph = raw_graph()
            return httpx.Response(
                200, json=collapse_progress(graph) if mode == "collapsed" else graph
            )
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such"}})

    client = Client("http://herald.test", "k", transport=httpx.MockTransport(handler))
    monkeypatch.setattr(cli_events, "client", lambda: client)
    monkeypatch.setattr(common, "client", lambda: client)
    return seen


def test_the_tree_prints_a_jobs_progress_once(asked: list[str]) -> None:
    result = CliRunner().invoke(cli_main.app, ["flow", CID], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert asked[-1] == "collapsed"  # (the id check before may ask for the plain graph)
    assert "job.progressed x100 — step 100/100" in result.output
    assert "step 37/100" not in result.output  # no line per progress message
    assert "finetune.completed" in result.output
    assert len(result.output.splitlines()) < 10


def test_json_keeps_every_progress_message(asked: list[str]) -> None:
    result = CliRunner().invoke(cli_main.app, ["flow", CID, "--json"])
    assert result.exit_code == 0, result.output
    assert set(asked) == {"all"}
    graph = json.loads(result.output)
    assert sum(n["type"] == "job.progressed" for n in graph["nodes"]) == STEPS
