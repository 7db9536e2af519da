"""``lm-eval``: run lm-evaluation-harness tasks against the target, mapped into Herald's contract.

The harness talks to the same OpenAI-compatible base URL as every other engine
(``local-chat-completions`` or ``local-completions``), so registry versions and checkpoints are
reached through Herald's in-process gateway. Tasks are either

- ``task_yaml``: a custom lm-eval task file (its ``dataset_kwargs.data_files`` may point at a
  local JSONL); ``task`` names the task when the file defines several;
- ``auto: generate_until | multiple_choice``: a task generated for the suite's own data set
  (``messages``/``reference`` or ``prompt``/``choices``/``answer``), so the harness and Herald's
  ``reference`` engine score the very same items.

Multiple choice needs prompt token boundaries: give ``tokenizer`` (a local Hugging Face
tokenizer folder). Nothing is downloaded: the harness runs with ``HF_DATASETS_OFFLINE`` and
``HF_HUB_OFFLINE`` set. Install with ``pip install "herald[eval]"``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from herald.errors import BackendUnavailable
from herald.evaluation.base import Engine, ItemScores, RunContext
from herald.evaluation.errors import ItemError


class LmEvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_yaml: str | None = Field(None, description="custom task YAML (relative to the suite)")
    task: str | None = Field(None, description="task name (default: the YAML's 'task')")
    auto: Literal["generate_until", "multiple_choice"] | None = None
    model_type: Literal["local-chat-completions", "local-completions"] = "local-chat-completions"
    num_concurrent: int = Field(1, ge=1, le=256)
    tokenizer: str | None = Field(None, description="local HF tokenizer folder (loglikelihood)")
    max_retries: int = Field(3, ge=0)

    @model_validator(mode="after")
    def _one(self) -> LmEvalOptions:
        if (self.task_yaml is None) == (self.auto is None):
            raise ValueError("give exactly one of task_yaml or auto")
        return self


@contextmanager
def _offline() -> Iterator[None]:
    keys = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(
        {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    )
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def auto_task(kind: str, name: str, dataset: str, generation: Any) -> dict[str, Any]:
    """An lm-eval task config over a Herald suite's JSONL."""
    base: dict[str, Any] = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": dataset}},
        "test_split": "test",
    }
    if kind == "multiple_choice":
        return base | {
            "output_type": "multiple_choice",
            "doc_to_text": "{{prompt}}",
            "doc_to_choice": "{{choices}}",
            "doc_to_target": "{{answer}}",
            "metric_list": [
                {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            ],
        }
    return base | {
        "output_type": "generate_until",
        "doc_to_text": "{{messages[-1].content}}",
        "doc_to_target": "{{reference if reference is string else reference[0]}}",
        "target_delimiter": "",
        "generation_kwargs": {
            "until": list(generation.stop) or ["\n\n"],
            "max_gen_toks": generation.max_tokens,
            "do_sample": False,
            "temperature": 0.0,
        },
        "metric_list": [
            {
                "metric": "exact_match",
                "aggregation": "mean",
                "higher_is_better": True,
                "ignore_case": True,
                "ignore_punctuation": True,
            }
        ],
    }


class LmEvalEngine(Engine):
    name = "lm-eval"
    known_metrics: ClassVar[tuple[str, ...]] = ("exact_match", "acc", "acc_norm")
    default_metrics: ClassVar[tuple[str, ...]] = ("exact_match",)
    options_model = LmEvalOptions
    needs_generation = False
    batch = True

    def __init__(self, metrics: Any, options: dict[str, Any]) -> None:
        super().__init__(metrics, options)
        if not metrics and self.options.auto == "multiple_choice":
            self.metrics = ("acc", "acc_norm")

    def _task(self, run: RunContext, folder: Path) -> tuple[str, Path]:
        o = self.options
        suite = run.suite
        if o.auto is not None:
            name = "herald_" + "".join(c if c.isalnum() else "_" for c in suite.name)
            cfg = auto_task(o.auto, name, suite.dataset, suite.generation)
            (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
            return name, folder
        path = Path(o.task_yaml or "")
        if not path.is_absolute() and suite.path:
            path = Path(suite.path).parent / path
        if not path.is_file():
            raise ItemError(f"lm-eval task file not found: {path}")
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        task = o.task or cfg.get("task")
        if not task:
            raise ItemError(f"{path}: no 'task' name (set options.task)")
        files = (cfg.get("dataset_kwargs") or {}).get("data_files")
        if isinstance(files, dict):  # local files are relative to the task file, not the cwd
            cfg["dataset_kwargs"]["data_files"] = {
                split: str((path.parent / f).resolve()) if not Path(f).is_absolute() else f
                for split, f in files.items()
            }
        (folder / path.name).write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return str(task), folder

    def _model_args(self, run: RunContext) -> dict[str, Any]:
        o = self.options
        endpoint = "chat/completions" if o.model_type == "local-chat-completions" else "completions"
        args: dict[str, Any] = {
            "model": run.client.model,
            "base_url": f"{run.base_url}/{endpoint}",
            "num_concurrent": o.num_concurrent,
            "max_retries": o.max_retries,
            "timeout": 300,
        }
        if o.tokenizer:
            args |= {
                "tokenizer_backend": "huggingface",
                "tokenizer": o.tokenizer,
                "tokenized_requests": False,
            }
        else:
            args |= {"tokenizer_backend": None, "tokenized_requests": False}
        return args

    def evaluate(self, run: RunContext, doc_ids: list[int] | None) -> dict[str, Any]:
        """Run the harness (blocking) and return its raw result with per-sample logs."""
        try:
            import lm_eval  # type: ignore[import-untyped]
            from lm_eval.tasks import TaskManager  # type: ignore[import-untyped]
        except ImportError as exc:
            raise BackendUnavailable(
                f'the lm-eval engine needs lm-evaluation-harness: pip install "herald[eval]" '
                f"({exc.name} is missing)"
            ) from exc
        with tempfile.TemporaryDirectory(prefix="herald-lmeval-") as tmp, _offline():
            name, include = self._task(run, Path(tmp))
            tm = TaskManager(include_path=str(include), include_defaults=False)
            kwargs: dict[str, Any] = {}
            if doc_ids is not None:
                kwargs["samples"] = {name: doc_ids}
            elif run.suite.limit is not None:
                kwargs["limit"] = run.suite.limit
            result = lm_eval.simple_evaluate(
                model=self.options.model_type,
                model_args=self._model_args(run),
                tasks=[name],
                task_manager=tm,
                log_samples=True,
                apply_chat_template=self.options.model_type == "local-chat-completions",
                bootstrap_iters=0,
                **kwargs,
            )
        if result is None:
            raise ItemError("lm-eval returned no result")
        result["_task"] = name
        return dict(result)

    async def run_batch(self, run: RunContext, done: set[str]) -> list[ItemScores]:
        ids = [s.id for s in run.samples]
        todo = [i for i, sid in enumerate(ids) if sid not in done]
        if not todo:
            return []
        subset = todo if len(todo) < len(ids) and self.options.auto is not None else None
        result = await asyncio.to_thread(self.evaluate, run, subset)
        rows = result.get("samples", {}).get(result["_task"], [])
        out: list[ItemScores] = []
        for row in rows:
            doc = row.get("doc") or {}
            sid = str(doc.get("id", f"lm-eval-{row.get('doc_id')}"))
            if sid in done:
                continue
            scores = {m: float(row[m]) for m in self.metrics if isinstance(row.get(m), int | float)}
            resp = row.get("filtered_resps")
            output = (
                resp[0] if isinstance(resp, list) and resp and isinstance(resp[0], str) else None
            )
            missing = [m for m in self.metrics if m not in scores]
            out.append(
                ItemScores(
                    sid,
                    scores,
                    error=f"lm-eval reported no {', '.join(missing)}" if not scores else None,
                    output=output,
                    input={
                        "lm-eval": {
                            "doc_id": row.get("doc_id"),
                            "target": row.get("target"),
                            "output": output,
                        }
                    },
                )
            )
        return out
