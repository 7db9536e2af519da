"""Evaluation during training: the live (tiny) model is scored through the gateway and an
evaluation.completed with the step goes out through the job context."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from herald.jobs.context import JobContext

importlib.import_module("transformers")


def test_evaluate_in_process_on_a_live_model(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from herald.evaluation.training import evaluate_in_process
    from herald.models.testing import tiny_llama

    folder = tiny_llama(tmp_path / "tiny")
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    model.train()
    sent: list[dict[str, Any]] = []
    ctx = JobContext("job1", "finetune", 1, {}, sent.append)
    payload = evaluate_in_process(
        model, tok, "tiny", step=7, ctx=ctx, run_id="run-1", limit=2, home=tmp_path / "home"
    )
    assert payload["step"] == 7 and payload["run_id"] == "run-1"
    assert payload["items"] == 2
    m = payload["metrics"]["reference.exact_match"]
    assert m["n"] + m["errors"] == 2 and m["errors"] == 0
    assert model.training  # restored
    [emitted] = [s for s in sent if s["kind"] == "emit"]
    assert emitted["type"] == "evaluation.completed" and emitted["data"]["step"] == 7
