"""Fine-tune a microscopic Llama on CPU and assert on the files, numbers and messages produced."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest

from herald.jobs.context import JobContext
from herald.training.config import validate_config
from herald.training.errors import TrainingCancelled, TrainingError
from herald.training.job import FinetuneConfig

pytestmark = pytest.mark.slow

ROWS = [
    {"instruction": f"What is {i} + {i}?", "output": f"The answer is {2 * i}."} for i in range(24)
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from herald.models.testing import tiny_llama

    return tiny_llama(tmp_path_factory.mktemp("tiny") / "m")


def config(tiny: Path, **kw: Any) -> dict[str, Any]:
    base = {
        "base_model": str(tiny),
        "dataset": "rows",
        "model_name": "tiny-ft",
        "max_steps": 6,
        "save_steps": 3,
        "sequence_len": 64,
        "micro_batch_size": 4,
        "learning_rate": 0.01,
        "lora_r": 4,
        "lora_alpha": 8,
        "target_modules": ["q_proj", "v_proj"],
        "eval_steps": 3,
    }
    return validate_config(FinetuneConfig, {**base, **kw})


class Sink:
    """Collects what a job reports (the real JobContext writes to it)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def __call__(self, item: dict[str, Any]) -> None:
        self.items.append(item)

    def emitted(self, type_name: str) -> list[dict[str, Any]]:
        return [i["data"] for i in self.items if i["kind"] == "emit" and i["type"] == type_name]


def run(tiny: Path, work: Path, cfg: dict[str, Any], ctx: JobContext | None = None) -> Any:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from herald.training.runner import train

    model = AutoModelForCausalLM.from_pretrained(tiny)
    tok = AutoTokenizer.from_pretrained(tiny)
    return train(
        model,
        tok,
        train_rows=ROWS,
        validation_rows=ROWS[:4],
        data_format="instruction",
        config=cfg,
        work_dir=work,
        ctx=ctx,
        run_id="r1",
        job_id="j1",
    )


def test_lora_writes_a_safetensors_adapter_and_reports_each_step(
    tiny: Path, tmp_path: Path
) -> None:
    sink = Sink()
    ctx = JobContext("j1", "finetune", 1, {}, sink)
    result = run(tiny, tmp_path / "run", config(tiny), ctx)

    files = {p.name for p in result.output_dir.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= files
    assert "chat_template.jinja" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    template = (result.output_dir / "chat_template.jinja").read_text()
    assert template == result.chat_template and "<|im_start|>" in template

    import json

    adapter = json.loads((result.output_dir / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]

    progressed = sink.emitted("training.progressed")
    train_steps = [p for p in progressed if p["loss"] is not None]
    assert [p["step"] for p in train_steps] == [1, 2, 3, 4, 5, 6]
    assert all(p["max_steps"] == 6 and p["run_id"] == "r1" for p in progressed)
    assert all(p["learning_rate"] is not None and p["grad_norm"] is not None for p in train_steps)
    assert train_steps[-1]["tokens_per_second"] > 0
    assert train_steps[-1]["eta_s"] == 0
    assert [p["step"] for p in progressed if p["eval_loss"] is not None] == [3, 6]
    fractions = [i["progress"] for i in sink.items if i["kind"] == "progress"]
    assert fractions[-1] == 1.0

    assert result.global_step == 6 and result.resumed_from_step is None
    assert result.metrics["train_loss"] > 0 and result.metrics["eval_loss"] > 0
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["checkpoint-3", "checkpoint-6"]
    assert (tmp_path / "run/checkpoints/checkpoint-6/adapter_model.safetensors").is_file()


def test_a_retried_attempt_resumes_from_the_last_complete_checkpoint(
    tiny: Path, tmp_path: Path
) -> None:
    work = tmp_path / "run"
    first = run(tiny, work, config(tiny))
    assert first.global_step == 6
    # the process died while writing checkpoint-6: its trainer_state.json is missing
    (work / "checkpoints/checkpoint-6/trainer_state.json").unlink()
    sink = Sink()
    ctx = JobContext("j1", "finetune", 2, {}, sink)
    second = run(tiny, work, config(tiny), ctx)
    assert second.resumed_from_step == 3
    steps = [p["step"] for p in sink.emitted("training.progressed") if p["loss"] is not None]
    assert steps == [4, 5, 6]  # continued, not restarted from 0
    assert any("resumed from checkpoint at step 3" in i.get("line", "") for i in sink.items)
    assert second.global_step == 6


def test_cancel_checkpoints_then_stops(tiny: Path, tmp_path: Path) -> None:
    ctx = JobContext("j1", "finetune", 1, {}, Sink())
    ctx.cancel()
    with pytest.raises(TrainingCancelled, match="cancelled at step 1"):
        run(tiny, tmp_path / "run", config(tiny, save_steps=50), ctx)
    assert (tmp_path / "run/checkpoints/checkpoint-1/trainer_state.json").is_file()


def test_full_finetune_saves_a_standalone_model(tiny: Path, tmp_path: Path) -> None:
    result = run(tiny, tmp_path / "run", config(tiny, adapter="full", max_steps=2, eval_steps=None))
    files = {p.name for p in result.output_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= files
    assert "adapter_config.json" not in files


def test_merged_export_matches_the_adapter(tiny: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = run(tiny, tmp_path / "run", config(tiny, max_steps=2, merge_adapter=True))
    assert result.merged_dir is not None
    assert (result.merged_dir / "model.safetensors").is_file()
    merged = AutoModelForCausalLM.from_pretrained(result.merged_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny)
    with warnings.catch_warnings():  # peft 0.21 probes a property transformers 5 deprecated
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*", FutureWarning)
        adapted = PeftModel.from_pretrained(base, result.output_dir)
    ids = torch.tensor([[1, 5, 9, 20, 7]])
    with torch.no_grad():
        a = adapted(ids).logits
        m = merged(ids).logits
    assert torch.allclose(a, m, atol=1e-4)


class _Exploit:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("touch EXPLOITED",))


def test_resume_never_unpickles_code(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "run"
    run(tiny, work, config(tiny, max_steps=3, eval_steps=None))
    ckpt = work / "checkpoints/checkpoint-3"
    with (ckpt / "optimizer.pt").open("wb") as f:
        pickle.dump({"state": _Exploit()}, f, protocol=2)
    with pytest.raises(TrainingError, match=r"refused to resume from .*checkpoint-3"):
        run(tiny, work, config(tiny, max_steps=6, eval_steps=None))
    assert not (tmp_path / "EXPLOITED").exists()
