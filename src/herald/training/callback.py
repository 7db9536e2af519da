"""HF Trainer callback: logs → ``training.progressed`` messages, job progress and run metrics;
with ``eval_suites``, the live model is evaluated every ``eval_steps`` (else once at the end)
through :func:`herald.evaluation.training.evaluate_in_process` → ``evaluation.completed`` with
``step`` and ``run_id`` (the dashboard draws these curves) and run metrics
``eval/<suite>/<engine.metric>`` and ``eval/<suite>/failed_items``.

An in-training evaluation that raises or scores nothing (every item failed) stops the training
at that step without a checkpoint there, and :func:`herald.training.runner.train` raises
:class:`~herald.training.errors.InTrainingEvaluationFailed`: the run was asked to be watched on
that suite, so it fails with the evaluation's error, as the HF Trainer and Lightning fail when
their evaluation loop raises. A retry resumes from the checkpoint before that step and evaluates
it again. Items that fail beside scored ones are counted, not fatal.

Imported only inside the job (it imports transformers).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from herald.jobs.context import JobContext
from herald.messages.lifecycle import TrainingProgressed
from herald.services import Services
from herald.training.errors import InTrainingEvaluationFailed

log = logging.getLogger("herald.training")

METRIC_KEYS = ("loss", "learning_rate", "grad_norm", "eval_loss", "tokens_per_second", "epoch")


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class HeraldCallback(TrainerCallback):
    """Reports each logging step; stops (after a checkpoint) when the job is cancelled."""

    def __init__(
        self,
        *,
        ctx: JobContext | None,
        registry: Any,
        run_id: str,
        job_id: str,
        model_name: str,
        eval_suites: list[str] | None = None,
        eval_steps: int | None = None,
        eval_limit: int | None = None,
        tokenizer: Any = None,
        services: Services | None = None,
    ) -> None:
        self.ctx = ctx
        self.eval_suites = list(eval_suites or [])
        self.eval_steps = eval_steps
        self.eval_limit = eval_limit
        self.tokenizer = tokenizer
        self.services = services  # the job's: evaluation results go to its store
        self.evaluated_steps: list[int] = []
        self.evaluations: list[dict[str, Any]] = []
        self.eval_error: InTrainingEvaluationFailed | None = None
        self.registry = registry
        self.run_id = run_id
        self.job_id = job_id
        self.model_name = model_name
        self.cancelled = False
        self.start_step = 0
        self.start_time = time.monotonic()
        self.start_tokens = 0
        self.last_time = self.start_time
        self.last_tokens = 0
        self.last_loss: float | None = None
        self.last_eval_loss: float | None = None
        self.last_eval_step: int | None = None
        self.tokens_per_second: float | None = None
        self.resumed_from_step: int | None = None
        self.reports = 0

    # lifecycle ----------------------------------------------------------------------------
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        # called after a checkpoint's state was loaded: global_step is where we resume
        self.start_step = state.global_step
        self.start_time = self.last_time = time.monotonic()
        self.start_tokens = self.last_tokens = int(state.num_input_tokens_seen or 0)
        if state.global_step:
            self.resumed_from_step = state.global_step
            self._log(f"resumed from checkpoint at step {state.global_step}/{state.max_steps}")

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        step = int(state.global_step)
        if self.eval_suites and step > self.start_step:
            every = self.eval_steps
            last = step >= int(state.max_steps or 0)
            if (every and step % every == 0) or (not every and last):
                self.evaluate(kw.get("model"), kw.get("processing_class") or self.tokenizer, step)
            if self.eval_error is not None:
                # no checkpoint of this step: a retry resumes before it and evaluates it again
                control.should_save = False
                control.should_training_stop = True
                return
        if self.ctx is not None and self.ctx.cancelled and not self.cancelled:
            self.cancelled = True
            control.should_save = True  # keep the progress: a later attempt resumes from it
            control.should_training_stop = True
            self._log(f"cancel requested: checkpointing at step {state.global_step} and stopping")

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        logs = logs or {}
        if "train_loss" in logs and "loss" not in logs:  # the final summary, not a step
            return
        now = time.monotonic()
        tokens = int(state.num_input_tokens_seen or 0)
        if tokens > self.last_tokens and now > self.last_time:
            self.tokens_per_second = (tokens - self.last_tokens) / (now - self.last_time)
        self.last_time, self.last_tokens = now, tokens
        loss = _num(logs.get("loss"))
        eval_loss = _num(logs.get("eval_loss"))
        if loss is not None:
            self.last_loss = loss
        step, max_steps = int(state.global_step), int(state.max_steps or 0)
        if eval_loss is not None:
            self.last_eval_loss, self.last_eval_step = eval_loss, step
        done = step - self.start_step
        eta = None
        if done > 0 and max_steps:
            eta = (now - self.start_time) / done * max(max_steps - step, 0)
        msg = TrainingProgressed(
            job_id=self.job_id,
            run_id=self.run_id,
            model_name=self.model_name,
            step=step,
            max_steps=max_steps,
            epoch=_num(state.epoch),
            loss=loss,
            learning_rate=_num(logs.get("learning_rate")),
            grad_norm=_num(logs.get("grad_norm")),
            tokens_per_second=self.tokens_per_second,
            eval_loss=eval_loss,
            eta_s=eta,
        )
        self.reports += 1
        metrics = {
            k: v
            for k, v in {
                "loss": msg.loss,
                "learning_rate": msg.learning_rate,
                "grad_norm": msg.grad_norm,
                "eval_loss": msg.eval_loss,
                "tokens_per_second": msg.tokens_per_second,
                "epoch": msg.epoch,
            }.items()
            if v is not None
        }
        if self.registry is not None and metrics:
            self.registry.log_metrics(self.run_id, step, metrics)
        if self.ctx is not None:
            self.ctx.emit(msg, subject=self.model_name)
            fraction = min(step / max_steps, 1.0) if max_steps else None
            label = f"step {step}/{max_steps}" + (f" loss {loss:.4f}" if loss is not None else "")
            self.ctx.progress(fraction, label, **metrics)

    def evaluate(self, model: Any, tokenizer: Any, step: int) -> None:
        """Score the live model on each suite at ``step``; a suite that raises or scores
        nothing sets :attr:`eval_error` (training then stops, see the module docstring)."""
        from herald.evaluation.training import evaluate_in_process
        from herald.jobs.executors.base import is_retryable

        if model is None or tokenizer is None or step in self.evaluated_steps:
            return
        self.evaluated_steps.append(step)
        for suite in self.eval_suites:
            try:
                payload = evaluate_in_process(
                    model,
                    tokenizer,
                    suite,
                    step=step,
                    ctx=self.ctx,
                    run_id=self.run_id,
                    model_name=self.model_name,
                    limit=self.eval_limit,
                    services=self.services,
                )
            except Exception as exc:
                reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                name = Path(suite).stem if suite.endswith((".yaml", ".yml")) else suite
                self.eval_error = InTrainingEvaluationFailed(
                    f"in-training evaluation of {name!r} at step {step} failed: {reason}",
                    retryable=is_retryable(exc),
                )
                self._log(self.eval_error.message)
                return
            self.evaluations.append(payload)
            name = str(payload.get("suite") or suite)
            scores = {
                f"eval/{name}/{key}": float(m["value"])
                for key, m in (payload.get("metrics") or {}).items()
                if isinstance(m.get("value"), int | float)
            }
            scores[f"eval/{name}/failed_items"] = float(payload.get("failed_items") or 0)
            if self.registry is not None:
                self.registry.log_metrics(self.run_id, step, scores)
            metric = payload.get("primary_metric")
            value = (payload.get("metrics", {}).get(metric) or {}).get("value")
            failed = payload.get("failed_items") or 0
            self._log(
                f"step {step}: {name} {metric}={value}"
                + (f" ({failed} of {payload.get('items')} items failed)" if failed else "")
            )

    # helpers ------------------------------------------------------------------------------
    def session_tokens_per_second(self) -> float | None:
        elapsed = self.last_time - self.start_time
        tokens = self.last_tokens - self.start_tokens
        return tokens / elapsed if elapsed > 0 and tokens > 0 else None

    def _log(self, line: str) -> None:
        log.info(line)
        if self.ctx is not None:
            self.ctx.log(line)
