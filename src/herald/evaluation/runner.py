"""Running one evaluation: samples x engines against a target, items stored as they complete.

``run_evaluation`` is what the ``evaluation.run`` job, the CLI's local mode and the training hook
call. It is resumable: items already stored under the evaluation id are skipped, so a killed
run continues where it stopped. Items run concurrently (``concurrency``); each item's chat
response is generated once and shared by every engine that needs it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from herald.errors import HeraldError
from herald.evaluation.base import Engine, ItemContext, RunContext, create_engine
from herald.evaluation.errors import ItemError
from herald.evaluation.sharded import score_sharded, shard_count
from herald.evaluation.store import EvaluationStore
from herald.evaluation.suites import InvalidSample, Sample, Suite, load_samples
from herald.evaluation.targets import OpenAIClient, TargetSpec, open_target, parse_target

if TYPE_CHECKING:
    from herald.registry import Registry
    from herald.settings import Settings

Progress = Callable[[int, int, int], None]


class EvaluationCancelled(HeraldError):
    code = "evaluation_cancelled"
    status = 409


@dataclass
class EvaluationPlan:
    """Everything one run needs besides the store and the target connection."""

    evaluation_id: str
    suite: Suite
    target: TargetSpec
    concurrency: int = 8
    model_version: str | None = None
    correlationid: str | None = None
    job_id: str | None = None
    step: int | None = None
    run_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _message_input(sample: Sample) -> dict[str, Any]:
    data = sample.model_dump(mode="json", exclude_none=True, exclude={"id"})
    return {k: v for k, v in data.items() if v not in ({}, [])}


async def _score_item(
    idx: int, sample: Sample, engines: list[Engine], run: RunContext
) -> tuple[dict[str, float], dict[str, Any], str | None, float | None]:
    suite = run.suite
    scores: dict[str, float] = {}
    errors: dict[str, Any] = {}
    response = None
    gen = [e for e in engines if e.generation_needed]
    if gen:
        g = suite.generation
        messages = sample.chat()
        if g.system and not any(m.get("role") == "system" for m in messages):
            messages = [{"role": "system", "content": g.system}, *messages]
        params: dict[str, Any] = {
            "max_tokens": g.max_tokens,
            "temperature": g.temperature,
            "top_p": g.top_p,
        }
        if g.stop:
            params["stop"] = g.stop
        if g.seed is not None:
            params["seed"] = g.seed
        try:
            response = await run.client.chat(messages, **params)
        except HeraldError as exc:
            for e in gen:
                errors[e.name] = {"error": f"generation failed: {exc.message}"}
    for e in engines:
        if e.name in errors:
            continue
        try:
            got = await e.score(ItemContext(sample, run, response))
            scores |= {f"{e.name}.{k}": float(v) for k, v in got.items()}
        except HeraldError as exc:
            err: dict[str, Any] = {"error": exc.message}
            if isinstance(exc.details, dict):
                err |= exc.details
            errors[e.name] = err
        except Exception as exc:  # an engine bug must not crash the run: record and count it
            errors[e.name] = {"error": f"{type(exc).__name__}: {exc}"}
    output = response.text if response is not None else None
    latency = response.latency_s if response is not None else None
    return scores, errors, output, latency


def summarize(
    suite: Suite, engines: list[Engine], rows: dict[str, tuple[dict[str, float], dict[str, Any]]]
) -> tuple[dict[str, dict[str, Any]], dict[str, bool]]:
    """Aggregates per ``engine.metric`` (value, CI, n, errors) and which metrics are
    higher-is-better."""
    metrics: dict[str, dict[str, Any]] = {}
    higher: dict[str, bool] = {}
    for e in engines:
        prefix = e.name + "."
        own = [
            {k[len(prefix) :]: v for k, v in s.items() if k.startswith(prefix)}
            for s, errs in rows.values()
            if e.name not in errs and "sample" not in errs
        ]
        failed = sum(1 for _, errs in rows.values() if e.name in errs or "sample" in errs)
        for metric in e.metrics:
            summary = e.aggregate(metric, own)
            summary["errors"] = failed
            summary["total"] = len(rows)
            metrics[prefix + metric] = summary
            higher[prefix + metric] = metric not in e.lower_is_better
    return metrics, higher


def check_thresholds(
    suite: Suite, metrics: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], bool | None]:
    out: dict[str, dict[str, Any]] = {}
    for key, th in suite.thresholds.items():
        value = (metrics.get(key) or {}).get("value")
        ok = value is not None
        if value is not None and th.min is not None:
            ok = value >= th.min
        if value is not None and th.max is not None:
            ok = ok and value <= th.max
        out[key] = {"min": th.min, "max": th.max, "value": value, "passed": ok}
    return out, (all(t["passed"] for t in out.values()) if out else None)


@asynccontextmanager
async def _clients(
    settings: Settings | None, registry: Registry | None, timeout: float
) -> AsyncIterator[Callable[[str | None, str | None], Any]]:
    """A factory of extra clients (judges), closed with the run."""
    async with AsyncExitStack() as stack:
        cache: dict[tuple[str | None, str | None], OpenAIClient] = {}

        async def open_client(target: str | None, model: str | None) -> OpenAIClient:
            key = (target, model)
            if key not in cache:
                spec = parse_target(target or "", model=model)
                client, _ = await stack.enter_async_context(
                    open_target(spec, settings=settings, registry=registry, timeout=timeout)
                )
                cache[key] = client
            return cache[key]

        yield open_client


async def run_evaluation(
    plan: EvaluationPlan,
    store: EvaluationStore,
    *,
    settings: Settings | None = None,
    registry: Registry | None = None,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    client: tuple[OpenAIClient, str] | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Run (or resume) ``plan``; returns the stored evaluation with its aggregates."""
    suite = plan.suite
    started = time.perf_counter()
    samples, invalid = await asyncio.to_thread(load_samples, suite)
    total = len(samples) + len(invalid)
    engines = [create_engine(e.engine, e.metrics, e.options) for e in suite.engines]
    _, done = await asyncio.to_thread(
        store.begin,
        plan.evaluation_id,
        suite=suite.name,
        suite_path=suite.path,
        suite_fingerprint=suite.fingerprint(),
        target=plan.target.ref,
        model=plan.target.model,
        model_version=plan.model_version,
        total=total,
        options=plan.options,
        primary_metric=suite.primary_metric,
        correlationid=plan.correlationid,
        job_id=plan.job_id,
        step=plan.step,
    )
    for bad in invalid:
        if bad.id not in done:
            await asyncio.to_thread(_store_invalid, store, plan.evaluation_id, bad)
            done.add(bad.id)
    counter = {"done": len(done), "errors": 0}

    async with AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(
                open_target(plan.target, settings=settings, registry=registry, timeout=timeout)
            )
        open_client = await stack.enter_async_context(_clients(settings, registry, timeout))
        run = RunContext(
            suite, client[0], client[1], plan.target.ref, open_client, samples, plan.concurrency
        )
        for e in engines:
            await e.setup(run)
        item_engines = [e for e in engines if not e.batch]
        sem = asyncio.Semaphore(plan.concurrency)

        async def one(idx: int, sample: Sample) -> None:
            async with sem:
                if cancelled is not None and cancelled():
                    raise EvaluationCancelled(f"evaluation {plan.evaluation_id} was cancelled")
                await record(idx, sample, await _score_item(idx, sample, item_engines, run))

        async def record(
            idx: int,
            sample: Sample,
            row: tuple[dict[str, float], dict[str, Any], str | None, float | None],
        ) -> None:
            scores, errors, output, latency = row
            await asyncio.to_thread(
                store.add_item,
                plan.evaluation_id,
                sample.id,
                idx,
                input=_message_input(sample),
                output=output,
                scores=scores,
                errors=errors,
                latency_s=latency,
            )
            counter["done"] += 1
            counter["errors"] += bool(errors)
            if progress is not None:
                progress(counter["done"], total, counter["errors"])

        todo = [(i, s) for i, s in enumerate(samples) if s.id not in done]
        if item_engines and todo and shard_count(plan.options) > 1:  # across Ray tasks
            by_index = dict(todo)
            async for part in score_sharded(
                plan, samples, todo, settings=settings, timeout=timeout
            ):
                if cancelled is not None and cancelled():
                    raise EvaluationCancelled(f"evaluation {plan.evaluation_id} was cancelled")
                for idx, row in part:
                    await record(idx, by_index[idx], row)
        elif item_engines and todo:
            tasks = [asyncio.ensure_future(one(i, s)) for i, s in todo]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        elif todo:  # batch-only suites: make the rows exist so resumption sees them
            for i, s in todo:
                await asyncio.to_thread(
                    store.add_item,
                    plan.evaluation_id,
                    s.id,
                    i,
                    input=_message_input(s),
                    output=None,
                    scores={},
                    errors={},
                )
        for e in engines:
            if not e.batch:
                continue
            rows = await asyncio.to_thread(store.all_scores, plan.evaluation_id)
            scored = {
                sid
                for sid, (s, errs) in rows.items()
                if any(k.startswith(e.name + ".") for k in s) or e.name in errs
            }
            for r in await e.run_batch(run, scored):
                scores = {f"{e.name}.{k}": float(v) for k, v in r.scores.items()}
                errors = {e.name: {"error": r.error}} if r.error else {}
                idx = next((i for i, s in enumerate(samples) if s.id == r.sample_id), -1)
                await asyncio.to_thread(
                    store.add_item,
                    plan.evaluation_id,
                    r.sample_id,
                    idx,
                    input=r.input,
                    output=r.output,
                    scores=scores,
                    errors=errors,
                )
            if progress is not None:
                progress(total, total, counter["errors"])

    rows = await asyncio.to_thread(store.all_scores, plan.evaluation_id)
    metrics, higher = summarize(suite, engines, rows)
    thresholds, passed = check_thresholds(suite, metrics)
    return await asyncio.to_thread(
        store.finish,
        plan.evaluation_id,
        status="completed",
        metrics=metrics,
        higher_is_better=higher,
        thresholds=thresholds,
        passed=passed,
        total=len(rows),
        options={**plan.options, "duration_s": round(time.perf_counter() - started, 3)},
    )


def _store_invalid(store: EvaluationStore, evaluation_id: str, bad: InvalidSample) -> None:
    store.add_item(
        evaluation_id,
        bad.id,
        -bad.line,
        input={"line": bad.line, "raw": bad.raw},
        output=None,
        scores={},
        errors={"sample": {"error": bad.error, "line": bad.line}},
    )


__all__ = [
    "EvaluationCancelled",
    "EvaluationPlan",
    "ItemError",
    "check_thresholds",
    "run_evaluation",
    "summarize",
]
