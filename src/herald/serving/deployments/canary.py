"""Canary regression → rollback (a default sensor; importing this module is cheap).

When ``evaluation.completed`` arrives for a registry version that is a deployment's *canary*
(a smaller, non-zero share of its traffic than another version), the canary policy of that
deployment (:class:`~herald.serving.deployments.models.CanaryPolicy`) decides:

* a metric below ``min_scores`` or failed suite thresholds → regressed;
* ``compare_with_stable``: the canary's primary metric is worse than the stable version's on the
  same suite (same data fingerprint) beyond the 95 % paired-bootstrap interval → regressed.
  Without an evaluation of the stable version one is requested (``evaluation.requested`` with
  ``options.canary_for``); its completion brings the verdict.

A regression publishes ``deployment.rollback`` with ``away_from`` = the canary version: the
deployment goes back to its newest revision without the canary (→ ``deployment.rolledback``).
Disable everywhere with ``POST /v1/sensors/herald.deployments.canary_regression/disable``, or per
deployment with ``canary: {enabled: false}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from herald.errors import HeraldError
from herald.evaluation.messages import EvaluationCompleted, EvaluationRequested
from herald.messages.base import Message
from herald.sensors.base import SensorContext, sensor
from herald.services import Services
from herald.serving.deployments.messages import DeploymentRollback
from herald.serving.deployments.models import Deployment, Target, canary_of

log = logging.getLogger("herald.serving.deployments.canary")


def _value(metrics: dict[str, Any], name: str) -> float | None:
    v = (metrics.get(name) or {}).get("value")
    return float(v) if isinstance(v, int | float) else None


def metric_key(metrics: dict[str, Any], name: str) -> str | None:
    """The key of ``metrics`` a gate's ``name`` means: itself, or the one ``engine.name``
    (``exact_match`` → ``reference.exact_match``, as the guides write gates); None when absent
    or ambiguous (two engines report it: name the engine)."""
    if name in metrics:
        return name
    found = [k for k in metrics if k.rsplit(".", 1)[-1] == name or k.endswith("." + name)]
    return found[0] if len(found) == 1 else None


def canary_verdicts(
    msg: EvaluationCompleted, deployments: list[Deployment], evaluations: Any
) -> list[Message]:
    """The messages a completed evaluation causes for the deployments it is a canary of.

    ``evaluations`` is the evaluation results store (``list_evaluations``, ``get``,
    ``compare``). A stable version's baseline (``options.canary_for``) re-judges its canary.
    """
    if msg.step is not None:
        return []  # evaluations during training are no verdict on a served version
    canary_for = msg.options.get("canary_for")
    if canary_for:
        from herald.evaluation.jobs import completed_message

        try:
            msg = completed_message(evaluations.get(str(canary_for)))
        except HeraldError as exc:
            log.warning("canary evaluation %s is gone: %s", canary_for, exc.message)
            return []
    if not msg.model_version:
        return []
    out: list[Message] = []
    requested = False
    for dep in deployments:
        pair = canary_of(dep, msg.model_version)
        if pair is None or not dep.canary.enabled:
            continue
        canary, stable = pair
        reasons = _threshold_reasons(msg, dep)
        if not reasons and dep.canary.compare_with_stable and msg.primary_metric:
            verdict = _against_stable(msg, stable, evaluations)
            if verdict is None:  # no baseline yet: evaluate the stable version once
                if not requested and not canary_for:
                    requested = True
                    out.append(_baseline_request(msg, stable, evaluations))
                continue
            reasons = verdict
        if reasons:
            reason = f"canary {canary.version} regressed: " + "; ".join(reasons)
            log.warning("deployment %s: %s", dep.name, reason)
            out.append(
                DeploymentRollback(
                    name=dep.name,
                    reason=f"{reason} (evaluation {msg.evaluation_id})",
                    away_from=canary.version,
                )
            )
    return out


def _threshold_reasons(msg: EvaluationCompleted, dep: Deployment) -> list[str]:
    reasons: list[str] = []
    for metric, floor in dep.canary.min_scores.items():
        key = metric_key(msg.metrics, metric)
        if key is None:  # a gate that cannot be checked must not pass silently
            have = ", ".join(sorted(msg.metrics)) or "none"
            reasons.append(
                f"the minimum score on {metric} cannot be checked: the evaluation reports "
                f"{have} (name one of them in min_scores)"
            )
            continue
        v = _value(msg.metrics, key)
        if v is not None and v < floor:
            reasons.append(f"{key} {v:.4g} is below the minimum {floor:g}")
    if dep.canary.on_failed_thresholds and msg.passed is False:
        failed = [k for k, t in msg.thresholds.items() if not (t or {}).get("passed", True)]
        reasons.append(
            "the suite's thresholds failed" + (f" ({', '.join(failed)})" if failed else "")
        )
    return reasons


def _baseline(msg: EvaluationCompleted, stable: Target, evaluations: Any) -> dict[str, Any] | None:
    for e in evaluations.list_evaluations(
        suite=msg.suite, model_version=stable.version, status="completed"
    ):
        if e.get("suite_fingerprint", "") == msg.suite_fingerprint and e.get("step") is None:
            return dict(e)
    return None


def _against_stable(msg: EvaluationCompleted, stable: Target, evaluations: Any) -> list[str] | None:
    """Reasons the canary is worse than ``stable`` ([] if not), None without a baseline."""
    base = _baseline(msg, stable, evaluations)
    if base is None:
        return None
    metric = msg.primary_metric
    assert metric is not None
    cmp = evaluations.compare([base["id"], msg.evaluation_id], metrics=[metric])
    res = cmp["comparisons"][0]["metrics"].get(metric)
    if res is None or not res.get("worse"):
        return []
    return [
        f"{metric} {res['mean_b']:.4g} vs {res['mean_a']:.4g} for {stable.version} "
        f"(difference {res['diff']:+.4g}, {res['confidence']:.0%} interval "
        f"[{res['ci_low']:+.4g}, {res['ci_high']:+.4g}] over {res['n']} shared items)"
    ]


def _baseline_request(
    msg: EvaluationCompleted, stable: Target, evaluations: Any
) -> EvaluationRequested:
    suite = msg.suite
    with contextlib.suppress(HeraldError):
        suite = evaluations.get(msg.evaluation_id).get("suite_path") or suite
    assert stable.version is not None
    # the same sample limit as the canary's run, or the fingerprints differ and the baseline
    # can never be compared (a canary run with --limit waited for a verdict forever)
    limit = msg.options.get("limit")
    return EvaluationRequested(
        target=stable.version,
        suite=suite,
        limit=limit if isinstance(limit, int) and limit > 0 else None,
        options={"canary_for": msg.evaluation_id},
    )


@sensor(on=EvaluationCompleted, name="herald.deployments.canary_regression")
async def on_canary_evaluated(msg: EvaluationCompleted, ctx: SensorContext) -> list[Message]:
    """Roll a deployment's canary back when its evaluation regressed (see the module doc)."""
    if msg.step is not None or not (msg.model_version or msg.options.get("canary_for")):
        return []
    services = Services.of_sensor(ctx)
    deployments = await asyncio.to_thread(services.deployment_store.list)
    return await asyncio.to_thread(canary_verdicts, msg, deployments, services.evaluations)
