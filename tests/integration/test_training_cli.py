"""``herald finetune -f FILE.yaml`` against a real ``herald up``: live progress, then a registered
version — on the tiny test model and (done-when) on the real bundled SmolLM2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "finetune"


def cli(server: Server, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HERALD_URL": server.url,
        "HERALD_API_KEY": server.key,
        "HERALD_HOME": str(server.home),
        "COLUMNS": "160",
    }
    return subprocess.run(
        [sys.executable, "-m", "herald.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_trains_the_tiny_model_and_prints_the_registered_version(tmp_path: Path) -> None:
    from herald.models.testing import tiny_llama

    tiny = tiny_llama(tmp_path / "tiny")
    server = Server(tmp_path / "home", [])
    server.start(timeout=90)
    try:
        args = ["finetune", "-f", str(EXAMPLES / "tiny-lora.yaml"), "--set", f"base_model={tiny}"]
        r = cli(server, *args, "--set", "max_steps=3", "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out["finetune_completed"]["model_name"] == "tiny-facts"
        assert out["model_registered"]["uri"] == "models:/tiny-facts/1"

        r = cli(server, *args, "--set", "max_steps=2")
        assert r.returncode == 0, r.stderr
        assert "registered models:/tiny-facts/2" in r.stdout
        assert "2/2" in r.stderr  # the progress bar reached the last step

        r = cli(server, *args, "--set", "lora_rank=3")
        assert r.returncode == 1
        assert "did you mean 'lora_r'" in r.stderr
    finally:
        server.stop()


def test_done_when_smollm2_lora_yaml_trains_and_registers(tmp_path: Path) -> None:
    """The bundled SmolLM2-135M through the whole flow on CPU (a few steps)."""
    server = Server(tmp_path / "home", [])
    server.start(timeout=90)
    try:
        r = cli(
            server,
            "finetune",
            "-f",
            str(EXAMPLES / "smollm2-lora.yaml"),
            "--set",
            "max_steps=3",
            "--set",
            "eval_steps=3",
            "--set",
            "micro_batch_size=2",
            "--set",
            "gradient_accumulation_steps=1",
            timeout=900,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        assert "registered models:/smollm2-facts/1 (lora)" in r.stdout
        with server.client() as c:
            mv = c.get("/v1/registry/models/smollm2-facts/versions/1").json()
            assert mv["kind"] == "lora"
            assert mv["run_id"] and mv["job_id"] == mv["run_id"]
            assert mv["chat_template"] and "<|im_start|>" in mv["chat_template"]
            assert mv["config"]["max_steps"] == 3
            assert "smollm2-135m-instruct" in json.dumps(mv["base_model"])
    finally:
        server.stop()
