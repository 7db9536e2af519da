"""The evaluation job and the built-in evaluation sensors (a built-in plugin; cheap to import).

    evaluation.requested ──sensor──▶ evaluation.run (job) ──▶ evaluation.progressed …
                                                          ──▶ evaluation.completed | evaluation.failed
    model.registered     ──sensor──▶ evaluation.requested per configured suite
    evaluation.completed ──sensor──▶ evaluation.decided (+ model.promote when significantly
                                     better than the champion; + evaluation.requested for the
                                     champion when it has no result on the suite yet)

The job is resumable: its evaluation id is the requesting event's id, items are stored as they
complete, and a retried or re-requested job skips them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from herald.evaluation.messages import (
    EvaluationCompleted,
    EvaluationDecided,
    EvaluationFailed,
    EvaluationProgressed,
    EvaluationRequested,
)
from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.messages.lifecycle import ModelPromote, ModelRegistered
from herald.sensors.base import SensorContext, sensor
from herald.services import Services

log = logging.getLogger("herald.evaluation")
EVALUATION_JOB = "evaluation.run"


def completed_message(ev: dict[str, Any], *, run_id: str | None = None) -> EvaluationCompleted:
    """``evaluation.completed`` from a stored evaluation."""
    return EvaluationCompleted(
        evaluation_id=ev["id"],
        suite=ev["suite"],
        suite_fingerprint=ev.get("suite_fingerprint") or "",
        target=ev["target"],
        model_version=ev.get("model_version"),
        metrics=ev["metrics"],
        primary_metric=ev.get("primary_metric"),
        thresholds=ev.get("thresholds") or {},
        passed=ev.get("passed"),
        items=ev.get("done", 0),
        failed_items=ev.get("failed_items", 0),
        samples_url=f"/v1/evaluations/{ev['id']}/samples",
        step=ev.get("step"),
        run_id=run_id,
        duration_s=(ev.get("options") or {}).get("duration_s"),
        options={k: v for k, v in (ev.get("options") or {}).items() if k != "duration_s"},
    )


def prepare(
    target: str,
    suite: str,
    services: Services,
    *,
    model: str | None = None,
    limit: int | None = None,
    api_key_secret: str | None = None,
) -> tuple[Any, Any, str | None, Any]:
    """(suite, target spec, resolved model version, registry) — raises clear errors naming the
    field (422; an endpoint the egress policy refuses: 403). The publish edge makes the same
    checks (:mod:`herald.evaluation.precheck`); the job makes them again before it runs.
    ``services`` give the settings and, for a registry target only, the registry."""
    from herald.evaluation.precheck import checked_suite, checked_target, resolved_version
    from herald.evaluation.targets import TargetSpec

    settings = services.settings
    s = checked_suite(suite, settings)
    if limit is not None:
        s = s.model_copy(update={"limit": min(limit, s.limit or limit)})
    spec = checked_target(target, settings, model=model, api_key_secret=api_key_secret)
    registry = None
    version = None
    if spec.kind == "registry":
        registry = services.registry
        mv = resolved_version(spec, registry)
        version = mv.uri
        spec = TargetSpec("registry", spec.ref, mv.uri, None, spec.api_key)
    return s, spec, version, registry


@job(name=EVALUATION_JOB, executor="local", max_attempts=2)
async def run_evaluation_job(
    target: str,
    suite: str,
    evaluation_id: str,
    model: str | None = None,
    concurrency: int | None = None,
    limit: int | None = None,
    api_key_secret: str | None = None,
    options: dict[str, Any] | None = None,
    correlationid: str | None = None,
    ctx: JobContext | None = None,
) -> EvaluationCompleted:
    """Evaluate ``target`` on ``suite`` (resumes ``evaluation_id`` if it was interrupted)."""
    from herald.evaluation.runner import EvaluationPlan, run_evaluation
    from herald.evaluation.settings import evaluation_settings

    services = Services.of_job(ctx)
    settings = services.settings
    es = evaluation_settings(settings)
    try:
        s, spec, version, registry = await asyncio.to_thread(
            prepare,
            target,
            suite,
            services,
            model=model,
            limit=limit,
            api_key_secret=api_key_secret,
        )
    except Exception as exc:
        _fail(ctx, evaluation_id, suite, target, exc)
        raise
    plan = EvaluationPlan(
        evaluation_id=evaluation_id,
        suite=s,
        target=spec,
        concurrency=concurrency or s.concurrency or es.concurrency,
        model_version=version,
        correlationid=correlationid,
        job_id=ctx.job_id if ctx is not None else None,
        # the limit is part of the suite's fingerprint: recorded so a baseline run can match it
        options={**(options or {}), **({"limit": limit} if limit is not None else {})},
    )
    last = {"t": 0.0}

    def progress(done: int, total: int, errors: int) -> None:
        if ctx is None:
            return
        now = time.monotonic()
        if done < total and now - last["t"] < 1.0:
            return
        last["t"] = now
        ctx.progress(done / total if total else 1.0, f"{done}/{total} items, {errors} failed")
        ctx.emit(
            EvaluationProgressed(
                evaluation_id=evaluation_id,
                suite=s.name,
                target=target,
                done=done,
                total=total,
                errors=errors,
            ),
            subject=f"evaluations/{evaluation_id}",
        )

    store = services.evaluations
    try:
        ev = await run_evaluation(
            plan,
            store,
            settings=settings,
            registry=registry,
            progress=progress,
            cancelled=(lambda: ctx.cancelled) if ctx is not None else None,
            timeout=es.request_timeout_s,
        )
    except Exception as exc:
        await asyncio.to_thread(
            store.finish, evaluation_id, status="failed", error=str(exc), finished_at=time.time()
        )
        _fail(ctx, evaluation_id, s.name, target, exc)
        raise
    if version is not None and registry is not None:
        flat = {
            f"eval.{s.name}.{k}": float(v["value"])
            for k, v in ev["metrics"].items()
            if v.get("value") is not None
        }
        name, _, number = version.removeprefix("models:/").rpartition("/")
        try:
            await asyncio.to_thread(
                registry.add_version_metrics,
                name,
                int(number),
                flat,
                source=f"evaluation:{evaluation_id}",
            )
        except Exception as exc:  # results are stored and announced either way
            log.warning("could not add evaluation metrics to %s: %s", version, exc)
    return completed_message(ev)


def _fail(
    ctx: JobContext | None, evaluation_id: str, suite: str, target: str, exc: BaseException
) -> None:
    if ctx is None:
        return
    message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    ctx.emit(
        EvaluationFailed(
            evaluation_id=evaluation_id,
            suite=suite,
            target=target,
            error=message,
            code=getattr(exc, "code", "evaluation_failed"),
        ),
        subject=f"evaluations/{evaluation_id}",
    )


# sensors --------------------------------------------------------------------------------------
@sensor(on=EvaluationRequested, name="herald.evaluation.run")
def on_evaluation_requested(msg: EvaluationRequested, ctx: SensorContext) -> None:
    """Start the ``evaluation.run`` job (evaluation id = the request's event id)."""
    params: dict[str, Any] = {
        "target": msg.target,
        "suite": msg.suite,
        "evaluation_id": msg.evaluation_id or ctx.event.id.replace("-", ""),
        "options": msg.options,
        "correlationid": ctx.event.correlationid,
    }
    for key in ("model", "concurrency", "limit", "api_key_secret"):
        value = getattr(msg, key)
        if value is not None:
            params[key] = value
    ctx.run_job(EVALUATION_JOB, params)


@sensor(on=ModelRegistered, name="herald.evaluation.on_registered")
def on_model_registered(msg: ModelRegistered, ctx: SensorContext) -> list[EvaluationRequested]:
    """Evaluate a new version on its configured suites: its tag ``eval_suites`` if set, else the
    settings' ``on_register_suites`` plus the ``eval_suites`` its fine-tune was watched on (the
    promotion policy judges these step-less runs; in-training runs only draw curves)."""
    from herald.evaluation.settings import evaluation_settings

    services = Services.of_sensor(ctx)
    es = evaluation_settings(services.settings)
    if not es.on_register or not msg.created:
        return []
    mv = services.registry.get_version(msg.name, msg.version)
    tagged = mv.tags.get("eval_suites")
    if tagged:
        suites = [s.strip() for s in tagged.split(",")]
    else:
        suites = [*es.on_register_suites, *(mv.config.get("eval_suites") or [])]
    return [
        EvaluationRequested(target=f"models:/{msg.name}/{msg.version}", suite=s)
        for s in dict.fromkeys(suites)  # each suite once, in order
        if s
    ]


@sensor(on=EvaluationCompleted, name="herald.evaluation.promotion")
def on_evaluation_completed(msg: EvaluationCompleted, ctx: SensorContext) -> list[Any]:
    """Promotion policy: compare a registry version with the champion on the same suite."""
    from herald.evaluation.settings import evaluation_settings

    services = Services.of_sensor(ctx)
    es = evaluation_settings(services.settings)
    if not es.promotion or msg.step is not None:
        return []
    store = services.evaluations
    decide_for = msg.options.get("decide_for")
    if decide_for:  # this was the champion's baseline run for an earlier candidate
        candidate = store.get(str(decide_for))
        return decide(candidate, store.get(msg.evaluation_id), es, services)
    if msg.model_version is None or msg.primary_metric is None:
        return []
    return decide(store.get(msg.evaluation_id), None, es, services)


def decide(
    candidate: dict[str, Any], champion_eval: dict[str, Any] | None, es: Any, services: Services
) -> list[Any]:
    """``evaluation.decided`` (+ ``model.promote``) for ``candidate`` against the champion
    (found in ``services``' registry, its results in ``services``' evaluation store)."""
    from herald.errors import NotFound

    version = candidate.get("model_version")
    metric = candidate.get("primary_metric")
    if not version or not metric:
        return []
    name, _, number = version.removeprefix("models:/").rpartition("/")
    registry = services.registry
    try:
        champ = registry.resolve(f"models:/{name}@{es.champion_alias}")
    except NotFound:
        champ = None
    except Exception:
        champ = None
    base = {
        "name": name,
        "candidate_version": int(number),
        "suite": candidate["suite"],
        "metric": metric,
        "alias": es.promote_alias,
        "candidate_evaluation": candidate["id"],
    }
    if champ is None:
        return [
            EvaluationDecided(
                **base,
                champion_version=None,
                decision="no_baseline",
                evidence={"reason": f"{name} has no {es.champion_alias!r}"},
            )
        ]
    if champ.version == int(number):
        return []  # the champion evaluated itself
    store = services.evaluations
    if champion_eval is None:
        found = [
            e
            for e in store.list_evaluations(
                suite=candidate["suite"], model_version=champ.uri, status="completed"
            )
            if e.get("suite_fingerprint") == candidate.get("suite_fingerprint")
        ]
        if not found:
            return [
                EvaluationRequested(
                    target=champ.uri,
                    suite=candidate.get("suite_path") or candidate["suite"],
                    options={"decide_for": candidate["id"]},
                )
            ]
        champion_eval = found[0]
    cmp = store.compare([champion_eval["id"], candidate["id"]], metrics=[metric])
    res = cmp["comparisons"][0]["metrics"].get(metric)
    evidence = {
        "paired_bootstrap": res,
        "confidence": 0.95,
        "champion_metrics": champion_eval["metrics"].get(metric),
        "candidate_metrics": candidate["metrics"].get(metric),
    }
    if res is None:
        decision = "no_baseline"
    elif res["better"]:
        decision = "promote"
    elif res["worse"]:
        decision = "worse"
    else:
        decision = "not_significant"
    out: list[Any] = [
        EvaluationDecided(
            **base,
            champion_version=champ.version,
            decision=decision,
            champion_evaluation=champion_eval["id"],
            evidence=evidence,
        )
    ]
    if decision == "promote":
        out.append(
            ModelPromote(
                name=name,
                version=int(number),
                alias=es.promote_alias,
                reason=(
                    f"{metric} {res['mean_b']:.4g} vs champion v{champ.version} "
                    f"{res['mean_a']:.4g}: diff {res['diff']:+.4g} "
                    f"[{res['ci_low']:+.4g}, {res['ci_high']:+.4g}] (paired bootstrap, "
                    f"n={res['n']}, p={res['p_value']:.3g}); evaluations {champion_eval['id']} "
                    f"→ {candidate['id']}"
                )[:1000],
            )
        )
    return out
