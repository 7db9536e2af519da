"""`herald models|runs|datasets` against a real `herald up` (built-in registry sensors)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from herald.cli.main import app
from herald.registry import Registry
from tests.e2e.conftest import Server

pytestmark = pytest.mark.slow


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def wait_json(*args: str, until: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = CliRunner().invoke(app, [*args, "--json"])
        data = json.loads(result.output) if result.exit_code == 0 else None
        if (data is not None and until(data)) or time.monotonic() > deadline:
            assert data is not None, result.output
            return data
        time.sleep(0.1)


def test_cli_registry_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server(tmp_path / "home", [])
    server.start(timeout=60)
    try:
        monkeypatch.setenv("HERALD_URL", server.url)
        monkeypatch.setenv("HERALD_API_KEY", server.key)
        monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
        uri = (tmp_path / "m" / "1").as_uri()  # under the tests' allowed roots
        data = json.dumps({"name": "demo", "artifact_uri": uri, "kind": "lora"})
        run("emit", "model.register", "--data", data)
        models = wait_json("models", "list", until=lambda d: len(d) == 1)
        assert models[0]["name"] == "demo"
        data2 = json.dumps({"name": "demo", "artifact_uri": uri[:-1] + "2", "kind": "lora"})
        run("emit", "model.register", "--data", data2)
        wait_json("models", "show", "demo", until=lambda d: d["latest_version"] == 2)
        assert "requested" in run("models", "promote", "demo", "1", "--alias", "champion")
        got = wait_json("models", "show", "demo@champion", until=lambda d: d.get("version") == 1)
        assert got["uri"] == "models:/demo/1"
        assert run("models", "resolve", "models:/demo@champion").startswith("models:/demo/1\t")
        history = json.loads(run("models", "history", "demo", "--json"))
        assert [h["version"] for h in history] == [1]
        card = run("models", "card", "demo/1")
        assert card.startswith("---\n") and "library_name: peft" in card
        run("models", "archive", "demo", "1", "--reason", "old")
        wait_json("models", "show", "demo/1", until=lambda d: d["status"] == "archived")
        # runs and data sets are written by other capabilities; seed them in the same database
        reg = Registry(f"sqlite:///{tmp_path / 'home' / 'herald.db'}")
        reg.create_run("r1", name="sft", params={"lr": 0.1})
        reg.create_run("r2", name="sft", params={"lr": 0.2})
        reg.log_metrics("r1", 1, {"loss": 2.0})
        reg.add_dataset_version(
            "chat",
            fingerprint="f",
            artifact_uri="file:///d",
            format="chat",
            rows=2,
            splits={"train": 2},
            stats={},
            pii={},
            source="x.jsonl",
        )
        reg.close()
        assert "r1" in run("runs", "list") and "r2" in run("runs", "list")
        assert json.loads(run("runs", "metrics", "r1", "-k", "loss", "--json"))["loss"][0] == {
            "step": 1,
            "value": 2.0,
            "timestamp": pytest.approx(time.time(), abs=600),
        }
        assert "lr" in run("runs", "compare", "r1", "r2")
        assert "chat" in run("datasets", "list")
        assert json.loads(run("datasets", "show", "chat/1", "--json"))["rows"] == 2
        bad = CliRunner().invoke(app, ["models", "show", "ghost"])
        assert bad.exit_code == 1 and "no model 'ghost'" in bad.output
    finally:
        server.stop()
