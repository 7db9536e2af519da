"""Evaluation during training: the live (tiny) model is scored through the gateway and an
evaluation.completed with the step goes out through the job context."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from herald.jobs.context import JobContext
from herald.services import Services
from herald.settings import Settings

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
        model,
        tok,
        "tiny",
        step=7,
        ctx=ctx,
        run_id="run-1",
        limit=2,
        services=Services(Settings(home=tmp_path / "home")),
    )
    assert payload["step"] == 7 and payload["run_id"] == "run-1"
    assert payload["items"] == 2
    m = payload["metrics"]["reference.exact_match"]
    assert m["n"] + m["errors"] == 2 and m["errors"] == 0
    assert model.training  # restored
    [emitted] = [s for s in sent if s["kind"] == "emit"]
    assert emitted["type"] == "evaluation.completed" and emitted["data"]["step"] == 7


def test_an_evaluation_whose_every_item_fails_is_failed_not_completed(tmp_path: Path) -> None:
    """Nothing scored is not a result: stored failed, evaluation.failed with the step and run,
    and raised with the first item's error (it was an evaluation.completed with 0 scores)."""
    import json

    import pytest
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from herald.evaluation.errors import EvaluationItemsFailed
    from herald.evaluation.store import EvaluationStore
    from herald.evaluation.training import evaluate_in_process
    from herald.models.testing import tiny_llama

    rows = [
        {"id": f"q{i}", "messages": [{"role": "user", "content": f"say {i}"}]} for i in range(3)
    ]
    (tmp_path / "noref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = tmp_path / "noref.yaml"
    suite.write_text(
        "name: noref\ndataset: noref.jsonl\ngeneration: {max_tokens: 2}\n"
        "engines:\n  - engine: reference\n    metrics: [exact_match]\n"
    )
    folder = tiny_llama(tmp_path / "tiny")
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    sent: list[dict[str, Any]] = []
    ctx = JobContext("job1", "finetune", 1, {}, sent.append)
    home = tmp_path / "home"
    with pytest.raises(EvaluationItemsFailed) as info:
        evaluate_in_process(
            model,
            tok,
            str(suite),
            step=3,
            ctx=ctx,
            run_id="run-1",
            services=Services(Settings(home=home)),
        )
    assert info.value.message.startswith("every one of 3 items failed (first: reference: ")
    assert "sample has no 'reference'" in info.value.message
    [emitted] = [s for s in sent if s["kind"] == "emit"]
    assert emitted["type"] == "evaluation.failed"
    assert (emitted["data"]["step"], emitted["data"]["run_id"]) == (3, "run-1")
    [stored] = EvaluationStore.from_home(home).list_evaluations(suite="noref")
    assert stored["status"] == "failed" and "every one of 3 items" in stored["error"]
