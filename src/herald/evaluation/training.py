"""Evaluation during training: score the model being trained on a suite, every N steps.

The training callback calls::

    from herald.evaluation.training import evaluate_in_process
    result = evaluate_in_process(model, tokenizer, "tiny", step=state.global_step, ctx=ctx,
                                 run_id=run_id, model_name=name)

The live model (a ``transformers`` model or a PEFT-wrapped one) is served, without copying or
saving it, by Herald's in-process gateway through an in-memory variant of the transformers
backend, so evaluation during training uses the very code path of every other evaluation.
With ``ctx`` (the job's :class:`~herald.jobs.JobContext`) an ``evaluation.completed`` message
carrying ``step`` and ``run_id`` is emitted, next to ``training.progressed``. The model is put in
eval mode for the evaluation and back in its previous mode afterwards.

An evaluation that scored nothing — every item failed (a suite the model cannot be scored on:
items without a reference, a judge that never parses) — is not a result: it is stored as
``failed``, announced as ``evaluation.failed`` (with ``step`` and ``run_id``) and raised as
:class:`~herald.evaluation.errors.EvaluationItemsFailed` with the first item's error; the
training callback fails the run with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from typing import Any

from herald.evaluation.errors import EvaluationItemsFailed
from herald.evaluation.messages import EvaluationFailed
from herald.services import Services
from herald.serving.backends import register_backend
from herald.serving.backends.transformers import TransformersBackend

BACKEND = "herald-eval-live"
_live: dict[str, tuple[Any, Any]] = {}
_lock = threading.Lock()


class LiveModelBackend(TransformersBackend):
    """The transformers backend over a model object already in memory (option ``handle``)."""

    name = "herald-eval-live"

    def _load(self) -> None:
        with _lock:
            model, tok = _live[str(self.options["handle"])]
        self.tok = tok
        self.lm = model
        try:
            self.device = str(next(model.parameters()).device)
        except (StopIteration, AttributeError):
            self.device = "cpu"
        cfg = model.config
        self.context_length = int(
            self.options.get("context_length")
            or getattr(cfg, "max_position_embeddings", None)
            or 2048
        )
        gen = getattr(model, "generation_config", None)
        eos = gen.eos_token_id if gen is not None else None
        ids = eos if isinstance(eos, list) else [eos]
        self.eos = {int(i) for i in [*ids, tok.eos_token_id] if i is not None}
        self.pad = tok.pad_token_id if tok.pad_token_id is not None else min(self.eos)
        self.template = self.version_template or getattr(tok, "chat_template", None)
        self.template_status = "version" if self.version_template else "tokenizer"

    async def close(self) -> None:
        await super().close()  # drops the reference only; the trainer keeps the model


register_backend(BACKEND, "herald.evaluation.training:LiveModelBackend")


def evaluate_in_process(
    model: Any,
    tokenizer: Any,
    suite: str,
    *,
    step: int,
    ctx: Any = None,
    run_id: str | None = None,
    model_name: str = "training",
    limit: int | None = None,
    concurrency: int = 4,
    services: Services | None = None,
) -> dict[str, Any]:
    """Evaluate the live ``model`` on ``suite`` (path or shipped name) at training ``step``;
    returns the ``evaluation.completed`` payload (also emitted through ``ctx`` when given).
    Settings and the results store are ``services``' (default: the job's, ``ctx.services``)."""
    from herald.evaluation.jobs import completed_message
    from herald.evaluation.runner import EvaluationPlan, run_evaluation
    from herald.evaluation.settings import evaluation_settings, suite_search_paths
    from herald.evaluation.suites import load_suite
    from herald.evaluation.targets import parse_target
    from herald.security.files import FilePolicy

    services = services or Services.of_job(ctx)
    settings = services.settings
    s = load_suite(  # suites of a caller's fine-tune config: the server's file policy
        suite,
        suite_search_paths(settings.home, evaluation_settings(settings)),
        policy=FilePolicy.from_settings(settings),
    )
    if limit is not None:
        s = s.model_copy(update={"limit": limit})
    handle = uuid.uuid4().hex
    served = f"{model_name}@step-{step}"
    target = parse_target(
        served, backend=BACKEND, backend_options={"handle": handle, "max_batch_size": 8}
    )
    eid = f"{(run_id or handle)[:40]}-step{step}".replace("/", "-")
    plan = EvaluationPlan(
        eid,
        s,
        target,
        concurrency=concurrency,
        step=step,
        run_id=run_id,
        options={"model_name": model_name},
    )
    store = services.evaluations  # shared with the api's /v1/evaluations
    was_training = bool(getattr(model, "training", False))
    with _lock:
        _live[handle] = (model, tokenizer)
    try:
        model.eval()
        ev = _run_sync(run_evaluation(plan, store, settings=settings))
    except Exception as exc:
        with contextlib.suppress(Exception):  # no row when it failed before it began
            store.finish(eid, status="failed", error=f"{type(exc).__name__}: {exc}")
        failed_ev = {"id": eid, "suite": s.name}
        _announce_failure(ctx, ev=failed_ev, target=served, exc=exc, step=step, run_id=run_id)
        raise
    finally:
        with _lock:
            _live.pop(handle, None)
        if was_training:
            model.train()
    items, failed = int(ev.get("done") or 0), int(ev.get("failed_items") or 0)
    if failed >= items:  # nothing scored: not a result to draw or to judge
        first = store.items(eid, failed=True, limit=1)
        err = EvaluationItemsFailed(
            f"every one of {items} items failed (first: {_first_error(first[0]['errors'])})"
            if first
            else "no item was evaluated (the suite has no items)",
            details={"evaluation_id": eid, "items": items, "failed_items": failed},
        )
        store.finish(eid, status="failed", error=err.message)
        _announce_failure(ctx, ev=ev, target=served, exc=err, step=step, run_id=run_id)
        raise err
    message = completed_message(ev, run_id=run_id)
    if ctx is not None:
        ctx.emit(message, subject=f"runs/{run_id}" if run_id else None)
    return message.payload()


def _first_error(errors: dict[str, Any]) -> str:
    """``engine: message`` of an item's first error."""
    for engine, err in errors.items():
        text = err.get("error") if isinstance(err, dict) else err
        return f"{engine}: {text}"
    return "unknown error"


def _announce_failure(
    ctx: Any, *, ev: dict[str, Any], target: str, exc: BaseException, step: int, run_id: str | None
) -> None:
    if ctx is None:
        return
    ctx.emit(
        EvaluationFailed(
            evaluation_id=ev["id"],
            suite=ev["suite"],
            target=target,
            error=getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}",
            code=getattr(exc, "code", "evaluation_failed"),
            step=step,
            run_id=run_id,
        ),
        subject=f"runs/{run_id}" if run_id else None,
    )


def _run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, name="herald-eval-in-training")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
