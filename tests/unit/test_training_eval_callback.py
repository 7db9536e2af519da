"""In-training evaluation: a fine-tune whose config names eval suites scores the live model
every eval_steps through the gateway → evaluation.completed with the step (microscopic Llama)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from herald.jobs.context import JobContext
from herald.services import Services
from herald.settings import Settings
from herald.training.config import validate_config
from herald.training.job import FinetuneConfig

pytestmark = pytest.mark.slow

ROWS = [{"instruction": f"What is {i} + {i}?", "output": f"{2 * i}"} for i in range(16)]


def test_eval_suites_are_scored_every_eval_steps(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from herald.evaluation.store import EvaluationStore
    from herald.models.testing import tiny_llama
    from herald.training.runner import train

    tiny = tiny_llama(tmp_path / "tiny")
    cfg = validate_config(
        FinetuneConfig,
        {"base_model": str(tiny), "dataset": "rows", "model_name": "tiny-ft", "max_steps": 4,
         "save_steps": 4, "sequence_len": 64, "micro_batch_size": 4, "lora_r": 4,
         "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "eval_steps": 2,
         "eval_suites": ["tiny"], "eval_limit": 2},
    )  # fmt: skip
    sent: list[dict[str, Any]] = []
    ctx = JobContext("j1", "finetune", 1, {}, sent.append)
    home = tmp_path / "home"
    result = train(
        AutoModelForCausalLM.from_pretrained(tiny),
        AutoTokenizer.from_pretrained(tiny),
        train_rows=ROWS,
        validation_rows=[],
        data_format="instruction",
        config=cfg,
        work_dir=tmp_path / "run",
        ctx=ctx,
        run_id="r1",
        job_id="j1",
        services=Services(Settings(home=home)),
    )
    assert result.global_step == 4
    evals = [s["data"] for s in sent if s["kind"] == "emit" and s["type"] == "evaluation.completed"]
    assert [e["step"] for e in evals] == [2, 4]
    assert all(e["run_id"] == "r1" and e["items"] == 2 and e["suite"] == "tiny" for e in evals)
    # training went on between the evaluations (progress at every step, in order)
    order = [(s["type"], s["data"]["step"]) for s in sent if s["kind"] == "emit"]
    assert order.index(("evaluation.completed", 2)) < order.index(("training.progressed", 3))
    stored = EvaluationStore.from_home(home).list_evaluations(status="completed")
    assert sorted(e["step"] for e in stored) == [2, 4]


def test_a_suite_that_cannot_run_fails_the_training_at_that_step(tmp_path: Path) -> None:
    """An in-training evaluation that raises is not logged away: training stops at that step,
    without a checkpoint of it, and the run fails with the reason (it used to go on and be
    listed completed)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from herald.models.testing import tiny_llama
    from herald.training.errors import InTrainingEvaluationFailed
    from herald.training.runner import train

    tiny = tiny_llama(tmp_path / "tiny")
    cfg = validate_config(
        FinetuneConfig,
        {"base_model": str(tiny), "dataset": "rows", "model_name": "tiny-ft", "max_steps": 4,
         "save_steps": 1, "sequence_len": 64, "micro_batch_size": 4, "lora_r": 4,
         "lora_alpha": 8, "target_modules": ["q_proj"], "eval_steps": 2,
         "eval_suites": ["no-such-suite"]},
    )  # fmt: skip
    sent: list[dict[str, Any]] = []
    with pytest.raises(InTrainingEvaluationFailed) as info:
        train(
            AutoModelForCausalLM.from_pretrained(tiny),
            AutoTokenizer.from_pretrained(tiny),
            train_rows=ROWS,
            validation_rows=[],
            data_format="instruction",
            config=cfg,
            work_dir=tmp_path / "run",
            ctx=JobContext("j1", "finetune", 1, {}, sent.append),
            run_id="r1",
            job_id="j1",
            services=Services(Settings(home=tmp_path / "home")),
        )
    assert "evaluation of 'no-such-suite' at step 2 failed" in info.value.message
    assert "not found" in info.value.message
    assert info.value.status == 422  # a retry would fail the same way
    steps = [s["data"]["step"] for s in sent if s["kind"] == "emit" and s["type"] ==
             "training.progressed"]  # fmt: skip
    assert max(steps) == 2  # stopped at the failing evaluation
    checkpoints = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-1"]  # none of step 2: a retry evaluates it again
