"""Lines a user or a script copies from the CLI: JSON lines stay whole and literal, URIs stay on
one line, and the fine-tune bar keeps the last training loss after an evaluation-only report."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from rich.progress import Progress, TextColumn

from herald.cli import demo as demo_cli
from herald.cli import training as training_cli


class _StreamOnly:
    def __init__(self, events: list[Any]) -> None:
        self.events = events

    def stream(self, **_: Any) -> Any:
        yield from self.events


def test_demo_json_lines_are_whole_json_even_past_80_columns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    long = "x" * 150
    events = [
        SimpleNamespace(type="finetune.requested", data={"eval_suites": ["[tiny]"], "note": long}),
        SimpleNamespace(type="demo.completed", data={"ok": True, "name": "d"}),
    ]
    done = demo_cli._follow(_StreamOnly(events), "cid", 1, time.monotonic(), 30, as_json=True)
    assert done["ok"] is True
    lines = capsys.readouterr().out.splitlines()
    parsed = [json.loads(line) for line in lines]  # rich wrapped at 80 columns: not JSON
    assert [p["type"] for p in parsed] == ["finetune.requested", "demo.completed"]
    assert parsed[0]["data"] == {"eval_suites": ["[tiny]"], "note": long}  # no markup eaten


def test_finetune_bar_keeps_the_last_training_loss() -> None:
    console = Console(width=120, record=True, force_terminal=False)
    progress = Progress(TextColumn("loss {task.fields[loss]}"), console=console)
    live = training_cli._Live(progress)
    live.handle(SimpleNamespace(type="training.progressed", data={"step": 19, "loss": 0.41}))
    # the last report of a run with val_set_size carries eval_loss only
    live.handle(SimpleNamespace(type="training.progressed", data={"step": 20, "eval_loss": 0.29}))
    assert live.task is not None
    assert progress.tasks[0].fields["loss"] == "0.4100"


def test_trained_line_keeps_the_artifact_uri_on_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = "file:///tmp/home/artifacts/models/smollm2-facts/" + "5306576ad18f453f88854d1a39ad28f8"
    monkeypatch.setattr(training_cli, "out", Console(width=80, force_terminal=False))
    training_cli._report(
        {"artifact_uri": uri, "metrics": {"train_loss": 0.3691}},
        {"uri": "models:/smollm2-facts/2", "kind": "lora"},
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"trained {uri} (train_loss 0.3691)"  # not cut at column 80
    assert lines[1] == "registered models:/smollm2-facts/2 (lora)"
