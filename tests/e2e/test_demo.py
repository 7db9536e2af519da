"""`herald demo` against a real `herald up` (subprocesses, temp HERALD_HOME, API key) with the
bundled SmolLM2 and the smallest settings: ONE demo.requested drives fine-tune → evaluate →
register → promote → deploy → serve → drift → retrain → evaluate → promote → canary → watch →
rollout, and `herald flow <id> --json` holds every step in causal order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.slow

# the lifecycle, in the order each first happens along the causal chain to the rollout
STEPS = [
    "demo.requested",
    "finetune.requested",
    "finetune.completed",
    "model.register",
    "model.registered",
    "evaluation.requested",
    "evaluation.completed",
    "evaluation.decided",
    "model.promote",
    "model.promoted",
    "deployment.requested",
    "deployment.ready",
    "monitors.evaluate",
    "drift.detected",
    "dataset.register",
    "dataset.registered",
    "finetune.requested",
    "finetune.completed",
    "model.register",
    "model.registered",
    "evaluation.requested",
    "evaluation.completed",
    "evaluation.decided",
    "model.promote",
    "model.promoted",
    "deployment.traffic.changed",
    "deployment.ready",
    "deployment.watch",
    "deployment.traffic.changed",
    "deployment.rolledout",
    "demo.completed",
]


def causal_chain(graph: dict[str, Any], last_type: str) -> list[str]:
    """Message types from the root down to the (first) ``last_type`` node, following the
    flow graph's edges backwards (jobs included as ``job``)."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    parent = {e["to"]: e["from"] for e in graph["edges"]}
    [end] = [n for n in graph["nodes"] if n.get("type") == last_type][:1]
    chain, cur = [], end["id"]
    while cur is not None:
        chain.append(nodes[cur]["type"] if nodes[cur]["kind"] != "job" else "job")
        cur = parent.get(cur)
    return chain[::-1]


def reuse_converted_model(home: Path) -> None:
    """Point this home's model cache at an existing de-quantised SmolLM2 of the same GGUF (saves
    1-2 min of conversion on the shared CPU); without one the demo converts it, as on a fresh
    machine."""
    from herald.models.bundled import bundled_gguf, converted_dir, is_converted

    target = converted_dir(bundled_gguf(), name="smollm2-135m-instruct", cache_root=home / "models")
    sha = target.name.rsplit("-", 1)[1]
    cache = Path.home() / ".herald" / "models"
    for folder in sorted(cache.glob(f"*-{sha}")) if cache.is_dir() else []:
        if is_converted(folder):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(folder, target_is_directory=True)
            return


@pytest.mark.timeout(1500)
def test_demo_runs_the_whole_loop(server_factory: Any, tmp_path: Path) -> None:
    srv = server_factory(
        [],
        HERALD_API_KEY="demo-e2e-key-0123456789abcdef",
        HERALD_MONITORING__MIN_SAMPLES="8",  # the smallest windows the demo sends
        HERALD_MONITORING__PERMUTATIONS="200",
        HERALD_MONITORING__RETRAIN__MIN_ROWS="4",
    )
    reuse_converted_model(srv.home)
    srv.start(timeout=60)
    env = {**os.environ, "HERALD_URL": srv.url, "HERALD_API_KEY": "demo-e2e-key-0123456789abcdef",
           "HERALD_HOME": str(tmp_path / "client-home")}  # fmt: skip
    cmd = [sys.executable, "-m", "herald.cli.main", "demo", "--requests", "8", "--max-steps",
           "1", "--max-tokens", "4", "--eval-limit", "3", "--timeout", "1400"]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1450)
    log = srv.log.read_text()[-4000:]
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-2000:]}\n--- server:\n{log}"
    assert "done in" in run.stdout and "herald flow" in run.stdout
    cid = run.stdout.split("herald flow ")[-1].split()[0].strip()
    for stage in ("── fine-tune", "── serve", "── drift", "── canary: watch", "── rollout"):
        assert stage in run.stdout

    flow = subprocess.run([sys.executable, "-m", "herald.cli.main", "flow", cid, "--json"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)  # fmt: skip
    assert flow.returncode == 0, flow.stderr
    graph = json.loads(flow.stdout)
    chain = [t for t in causal_chain(graph, "demo.completed") if t in set(STEPS)]
    # every step in order on ONE causal path (other messages and jobs sit between them)
    it = iter(chain)
    missing = [s for s in STEPS if s not in it]
    assert missing == [], f"not on the causal path in order: {missing}\nchain: {chain}"
    types = {n.get("type") for n in graph["nodes"]}
    assert {"demo.traffic.served", "training.progressed", "deployment.rolledout"} <= types
    rolled = [n for n in graph["nodes"] if n.get("type") == "deployment.rolledout"]
    assert len(rolled) == 1

    with srv.client() as http:
        dep = http.get("/v1/deployments/demo").json()
    assert [(t["model"], t["version"], t["weight"]) for t in dep["targets"]] == [
        ("models:/demo@champion", "models:/demo/2", 100.0)
    ]
    tree = subprocess.run([sys.executable, "-m", "herald.cli.main", "flow", cid],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)  # fmt: skip
    assert tree.returncode == 0 and "deployment.rolledout" in tree.stdout

    # a second demo takes the next free name, and windows smaller than the server's
    # monitoring.min_samples stop it at once with the fix, not after a silent drift monitor
    again = subprocess.run([*cmd[:4], "--requests", "4", "--timeout", "120"], capture_output=True,
                           text=True, cwd=ROOT, env=env, timeout=180)  # fmt: skip
    assert again.returncode == 1, again.stdout
    assert "demo 'demo-2'" in again.stdout
    assert "4 prompts per traffic window" in again.stderr and "min_samples is 8" in again.stderr
    assert "--requests 8" in again.stderr and "Traceback" not in again.stderr


def test_demo_says_when_herald_is_not_running(tmp_path: Path) -> None:
    env = {**os.environ, "HERALD_URL": "http://127.0.0.1:9", "HERALD_API_KEY": "k",
           "HERALD_HOME": str(tmp_path)}  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "herald.cli.main", "demo"], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=60)  # fmt: skip
    assert run.returncode == 1
    assert "cannot reach Herald at http://127.0.0.1:9" in run.stderr
    assert "start Herald first" in run.stderr and "Traceback" not in run.stderr
