"""In-training evaluation, the way a user runs it (issue 14): ``herald finetune`` with
``--set 'eval_suites=[…]' --set eval_steps=2`` against a real ``herald up``.

A suite that scores puts its scores into the run's metrics (``herald runs show``); a suite whose
every item fails makes the run fail with the evaluation's error — the CLI exits non-zero, the
job and the run say ``failed`` with the reason, and no ``finetune.completed`` claims success.
"""

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

TINY_CONFIG = ROOT / "examples" / "finetune" / "tiny-lora.yaml"


def herald_cli(server: Any, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERALD_URL": server.url, "HERALD_HOME": str(server.home)}
    env["COLUMNS"] = "200"
    env.pop("HERALD_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "herald.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from herald.models.testing import tiny_llama

    return tiny_llama(tmp_path_factory.mktemp("tiny") / "m")


def finetune(server: Any, tiny: Path, suite: str, name: str) -> subprocess.CompletedProcess[str]:
    return herald_cli(
        server,
        "finetune",
        "-f",
        str(TINY_CONFIG),
        "--set",
        f"base_model={tiny}",
        "--set",
        f"model_name={name}",
        "--set",
        f"eval_suites=[{suite}]",
        "--set",
        "eval_steps=2",
        "--set",
        "eval_limit=2",
        "--set",
        "max_steps=4",
        "--set",
        "save_steps=2",
        "--json",
    )


def the_run(server: Any, name: str) -> dict[str, Any]:
    with server.client() as c:
        runs = c.get("/v1/runs", params={"name": f"finetune {name}"}).json()["data"]
        assert len(runs) == 1, runs
        run: dict[str, Any] = c.get(f"/v1/runs/{runs[0]['id']}").json()
        return run


def test_in_training_scores_reach_the_run_metrics(server_factory: Any, tiny: Path) -> None:
    server = server_factory([])
    server.start()
    proc = finetune(server, tiny, "tiny", "tiny-scored")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    done = json.loads(proc.stdout)["finetune_completed"]
    run = the_run(server, "tiny-scored")
    assert run["status"] == "finished"
    assert done["run_id"] == run["id"]
    # the suite's metrics, under eval/<suite>/<engine.metric>, at the evaluated steps
    assert "eval/tiny/reference.contains" in run["metrics"], run["metrics"]
    shown = herald_cli(server, "runs", "metrics", run["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    series = json.loads(shown.stdout)
    assert [p["step"] for p in series["eval/tiny/reference.contains"]] == [2, 4]
    assert all(p["value"] == 0.0 for p in series["eval/tiny/failed_items"])
    with server.client() as c:
        evals = c.get("/v1/messages", params={"type": "evaluation.completed", "limit": 10}).json()[
            "data"
        ]
    assert sorted(e["data"]["step"] for e in evals) == [2, 4]
    assert {e["data"]["run_id"] for e in evals} == {run["id"]}


def test_an_evaluation_whose_every_item_fails_fails_the_run(
    server_factory: Any, tiny: Path, tmp_path: Path
) -> None:
    # items without a 'reference': the reference engine refuses each one
    (tmp_path / "noref.jsonl").write_text(
        "".join(
            json.dumps({"id": f"q{i}", "messages": [{"role": "user", "content": f"say {i}"}]})
            + "\n"
            for i in range(3)
        )
    )
    suite = tmp_path / "noref.yaml"
    suite.write_text(
        "name: noref\ndataset: noref.jsonl\ngeneration: {max_tokens: 4, temperature: 0}\n"
        "engines:\n  - engine: reference\n    metrics: [exact_match]\n"
    )
    server = server_factory([])
    server.start()
    proc = finetune(server, tiny, str(suite), "tiny-noref")
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "evaluation of 'noref' at step 2 failed" in proc.stderr, proc.stderr
    assert "every one of 2 items failed" in proc.stderr
    assert "sample has no 'reference'" in proc.stderr
    run = the_run(server, "tiny-noref")
    assert run["status"] == "failed"
    assert "sample has no 'reference'" in run["tags"]["error"]
    shown = herald_cli(server, "runs", "show", run["id"][:8])  # the text view says why, too
    assert "failed" in shown.stdout and "sample has no 'reference'" in shown.stdout, shown.stdout
    with server.client() as c:
        job = c.get(f"/v1/jobs/{run['job_id']}").json()
        assert job["status"] == "failed"
        assert "every one of 2 items failed" in job["error"]
        failed = c.get("/v1/messages", params={"type": "job.failed", "limit": 10}).json()["data"]
        assert [f["data"]["will_retry"] for f in failed] == [False]  # the same suite fails again
        assert "every one of 2 items failed" in failed[0]["data"]["error"]
        completed = c.get("/v1/messages", params={"type": "finetune.completed"}).json()["data"]
        assert completed == []
        ev_failed = c.get("/v1/messages", params={"type": "evaluation.failed"}).json()["data"]
        assert [(e["data"]["step"], e["data"]["run_id"]) for e in ev_failed] == [(2, run["id"])]
        stored = c.get("/v1/evaluations", params={"suite": "noref"}).json()["data"]
        assert [e["status"] for e in stored] == ["failed"]
