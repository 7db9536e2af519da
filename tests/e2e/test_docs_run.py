"""The guides' shell blocks, run as a reader runs them, against one real `herald up`.

Every command of every ```bash block under docs/ runs in order (guide by guide, line by line,
`herald` on PATH, `KEY` and `HERALD_URL` set as the API guide defines them) and must exit 0 —
except the commands listed in SKIP or the guides in SKIP_GUIDES, each with the reason. The README's
blocks run in tests/e2e/test_newcomer.py; tests/unit/test_docs_commands.py parses every command,
skipped or not, with the real CLI.

What the test changes in a command, and why:
- the server is the test's: the documented `http://127.0.0.1:8700` / `localhost:8700` become its
  URL, and `curl` gets `--fail-with-body` so an HTTP error fails the line (not only exit codes);
- synopsis brackets are dropped (`[--json]` runs as `--json`), `·`-separated commands run apart;
- a path the reader fills in (`file:///…/x`) gets the real one (SUBSTITUTE);
- a guide's teardown lines (`… delete …`) run after its other blocks, so later blocks of the
  guide still find what the first one made.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.docs_blocks import ROOT, SHELL, blocks, logical_lines

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent  # the venv's bin: `herald` as the guides call it
# guides whose blocks do not run here, and why
SKIP_GUIDES = {
    "docs/guides/deployments.md": "deploys models:/support-bot on two replicas of a real model",
    "docs/guides/finetuning.md": "fine-tunes (minutes on CPU); the README's runs in "
    "test_newcomer.py, tiny ones in tests/e2e/test_finetune_*",
    "docs/guides/ray.md": "pip install and a Ray cluster (tests/integration/test_ray_*)",
    "docs/guides/scale-out.md": "PostgreSQL roles, Docker, Helm and kubectl (test_roles_startup, "
    "test_scaleout_*, test_kubernetes_chart)",
    "docs/guides/serving.md": "pip install and lm_eval (not installed); serving runs in "
    "test_serving_up.py",
    "docs/guides/adapters.md": "runs Herald's own contract suite (tests/contract, which make "
    "test runs) and a third party's package tests",
}
# commands that do not run here (a substring of the command in its guide) and why
SKIP = {
    ("docs/guides/api.md", "--cursor <next_cursor>"): "needs the next_cursor of a first page",
    ("docs/guides/datasets.md", "herald up &"): "the test's server is running",
    ("docs/guides/datasets.md", "s3://bucket/facts.parquet"): "an example S3 bucket",
    ("docs/guides/evaluation.md", "pip install"): "installed in the test environment",
    ("docs/guides/evaluation.md", "herald up &"): "the test's server is running",
    ("docs/guides/evaluation.md", "--suite factual-qa --wait"): "evaluates the real model on "
    "factual-qa (minutes on CPU); the README's `eval run --suite tiny` runs in test_newcomer.py",
    ("docs/guides/evaluation.md", "eval show ID"): "ID: an evaluation id",
    ("docs/guides/evaluation.md", "eval compare BASELINE"): "BASELINE, CANDIDATE: evaluation ids",
    ("docs/guides/evaluation.md", "eval leaderboard SUITE"): "SUITE: a suite name",
    ("docs/guides/evaluation.md", "models:/acme@champion"): "an example model (acme)",
    ("docs/guides/monitoring.md", "chatcmpl-..."): "needs the id of a served response",
    ("docs/guides/monitoring.md", "<event id>"): "needs a pending approval",
    ("docs/guides/rag.md", "herald up &"): "the test's server is running",
    ("docs/guides/registry.md", "runs show RUN"): "RUN: a run id",
    ("docs/guides/registry.md", "runs metrics RUN"): "RUN: a run id",
    ("docs/guides/registry.md", "runs compare RUN_A"): "RUN_A, RUN_B: run ids",
    ("docs/guides/registry.md", "datasets show chat/1"): "an example data set (chat)",
}
HANDBOOK = ROOT / "examples" / "rag" / "handbook"
# what the reader fills in: (guide, text) → replacement ({adapter}: a folder the test makes)
SUBSTITUTE = {
    ("docs/guides/rag.md", "file:///…/"): HANDBOOK.as_uri() + "/",
    ("docs/guides/registry.md", "file:///…/adapter"): "{adapter}",
}


def guide_commands() -> list[tuple[str, int, str]]:
    """(guide, line, command) in the order a reader runs them, teardown last per guide."""
    out: list[tuple[str, int, str]] = []
    teardown: list[tuple[str, int, str]] = []
    guide = ""
    for block in blocks(*SHELL):
        rel = str(block.path.relative_to(ROOT))
        if rel == "README.md" or rel in SKIP_GUIDES:
            continue
        if rel != guide:
            out, teardown, guide = out + teardown, [], rel
        for line in logical_lines(block):
            text = re.sub(r"\\\n\s*", " ", line.text)
            for command in re.split(r"\s+·\s+", text):
                target = teardown if re.search(r"\bdelete\b", command) else out
                target.append((rel, line.line, command))
    return out + teardown


def prepare(rel: str, command: str, url: str, adapter: Path) -> str:
    for (guide, old), new in SUBSTITUTE.items():
        if guide == rel:
            command = command.replace(old, new.format(adapter=adapter.as_uri()))
    command = re.sub(r"\[(-[^\[\]]*)\]", r"\1", command)  # synopsis: [--json] → --json
    command = command.replace("http://127.0.0.1:8700", url).replace("localhost:8700", url)
    return re.sub(r"(^|[;&|]\s*)curl ", r"\1curl --fail-with-body ", command)


@pytest.mark.timeout(900)
def test_guide_commands_run(server_factory: Any, tmp_path: Path) -> None:
    srv = server_factory(["examples/orders.py"])  # the API guide posts acme.order.placed
    srv.start(timeout=90)
    # the reader's machine: ~/.herald is the server's home, the repo's examples beside them
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / ".herald").symlink_to(srv.home, target_is_directory=True)
    (work / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    # the prompts guide registers a second version of its template, which the reader edited
    (work / "answer-v2.j2").write_text("You answer for {{ company }}, briefly, in {{ language }}.")
    adapter = tmp_path / "adapter"  # the registry guide's artifact: a registered LoRA folder
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    env = {**os.environ, "HOME": str(home), "HERALD_HOME": str(srv.home), "HERALD_URL": srv.url,
           "KEY": srv.key, "PATH": f"{BIN}:{os.environ['PATH']}", "COLUMNS": "200"}  # fmt: skip
    env.pop("HERALD_API_KEY", None)
    # the registry guide's model `demo` already has a version 1 (its block registers version 2)
    with srv.client() as api:
        first = {"name": "demo", "artifact_uri": adapter.as_uri(), "kind": "lora"}
        r = api.post("/v1/messages", json={"type": "model.register", "data": first})
        assert r.status_code == 202, r.text

    used: set[tuple[str, str]] = set()
    ran: list[str] = []
    for rel, line, command in guide_commands():
        skip = [key for key in SKIP if key[0] == rel and key[1] in command]
        if skip:
            used.update(skip)
            continue
        shell = prepare(rel, command, srv.url, adapter)
        done = subprocess.run(["bash", "-c", shell], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, (
            f"{rel}:{line}: `{command}` exited {done.returncode}\n"
            f"ran as: {shell}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        ran.append(f"{rel}:{line}")
    assert set(SKIP) - used == set(), "SKIP entries that match no command any more"
    guides = {r.split(":")[0] for r in ran}
    assert guides == {f"docs/guides/{g}.md" for g in ("api", "datasets", "evaluation",
                      "monitoring", "prompts", "rag", "registry")}, guides  # fmt: skip

    # and the commands did what the guides say
    with srv.client() as api:
        assert api.get("/v1/datasets/facts/versions/1").is_success  # datasets guide
        champion = api.get("/v1/registry/models/demo").json()["aliases"]
        assert champion.get("champion") == 2, champion  # registry guide
        assert api.get("/v1/collections/handbook").status_code == 404  # rag guide: deleted
    assert (work / "README.md").read_text().strip()  # `herald models card … -o README.md`
    print(json.dumps(ran))
