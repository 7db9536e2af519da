"""Progressive rollout: watch a deployment's canary, then roll it out or back (default sensors;
importing this module is cheap).

A deployment with ``rollout: {strategy: canary}`` gets a new version of the alias it follows as
a *canary* (``herald.deployments.follow_alias`` → ``deployment.traffic.changed`` with ``add``).
Then:

    deployment.ready (a revision with a canary)  ──herald.deployments.rollout_start──▶
    deployment.watch  ──herald.deployments.rollout_watch──▶  deployment.watch job (inline):
        every ``check_interval_s`` it reads the request log of the deployment since the canary
        took traffic, per version (requests, error rate, p95 latency, feedback scores), and the
        canary version's evaluations, and decides with :func:`judge`:
          * a breached limit (error rate, p95 latency, feedback)   → deployment.rollback
          * ``require_evaluation`` and a failed / missing evaluation → rollback / keep watching
          * ``min_requests`` served and ``watch_s`` passed, all fine → deployment.traffic.changed
            (``rollout_of``: the canary replaces the stable version) → deployment.rolledout
          * ``max_watch_s`` passed without ``min_requests``         → ``on_insufficient_traffic``
        The verdict carries the measurements as ``evidence``.

Every message is caused by the previous one, so the whole rollout is one flow. Disable with
``POST /v1/sensors/herald.deployments.rollout_start/disable`` (the canary then stays until a
person changes the traffic), or per deployment with the ``replace`` strategy.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.messages.base import Message
from herald.sensors.base import SensorContext, sensor
from herald.services import Services
from herald.serving.deployments.messages import (
    DeploymentReady,
    DeploymentRollback,
    DeploymentTrafficChanged,
    DeploymentWatch,
)
from herald.serving.deployments.models import Deployment, RolloutPolicy, canary_of
from herald.serving.deployments.store import DeploymentStore

log = logging.getLogger("herald.serving.deployments.rollout")
WATCH_JOB = "deployment.watch"


@dataclass
class VersionStats:
    """Online metrics of one version over the watch window."""

    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def latency_p95_ms(self) -> float | None:
        if not self.latencies:
            return None
        xs = sorted(self.latencies)
        return 1000.0 * xs[min(len(xs) - 1, math.ceil(0.95 * len(xs)) - 1)]

    @property
    def feedback_score(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": r(self.error_rate),
            "latency_p95_ms": r(self.latency_p95_ms),
            "feedback_score": r(self.feedback_score),
            "feedback_n": len(self.scores),
        }


def version_stats(
    records: list[dict[str, Any]], scores: dict[str, float], deployment: str, since: float
) -> dict[str, VersionStats]:
    """Per-version metrics of ``deployment``'s requests logged at or after ``since``."""
    out: dict[str, VersionStats] = {}
    for rec in records:
        if rec.get("model") != deployment or float(rec.get("time") or 0.0) < since:
            continue
        st = out.setdefault(str(rec.get("version") or ""), VersionStats())
        st.requests += 1
        if int(rec.get("status") or 0) != 200:
            st.errors += 1
        elif isinstance(rec.get("latency_s"), int | float):
            st.latencies.append(float(rec["latency_s"]))
        score = scores.get(str(rec.get("request_id")))
        if score is not None:
            st.scores.append(score)
    return out


Decision = Literal["rollout", "rollback", "wait"]


@dataclass
class Verdict:
    decision: Decision
    reason: str
    evidence: dict[str, Any]


def evaluation_verdict(evaluations: list[dict[str, Any]]) -> tuple[bool | None, dict[str, Any]]:
    """(passed?, evidence) of a version's completed, non-training evaluations: None if none."""
    done = [e for e in evaluations if e.get("status") == "completed" and e.get("step") is None]
    if not done:
        return None, {}
    failed = [e["id"] for e in done if e.get("passed") is False]
    ev = {"evaluations": [e["id"] for e in done], "failed": failed}
    return not failed, ev


def judge(
    policy: RolloutPolicy,
    canary: VersionStats,
    stable: VersionStats,
    *,
    elapsed_s: float,
    evaluation: tuple[bool | None, dict[str, Any]] = (None, {}),
) -> Verdict:
    """The watch's decision from the canary's (and, as context, the stable's) online metrics."""
    evidence: dict[str, Any] = {
        "watched_s": round(elapsed_s, 1),
        "canary": canary.as_dict(),
        "stable": stable.as_dict(),
        "policy": policy.model_dump(),
    }
    if evaluation[1]:
        evidence["evaluation"] = {"passed": evaluation[0], **evaluation[1]}
    breaches: list[str] = []
    er = canary.error_rate
    if (
        er is not None
        and er > policy.max_error_rate
        and canary.requests >= max(1, min(policy.min_requests, 5))
    ):
        breaches.append(
            f"error rate {er:.1%} over {canary.requests} requests > max {policy.max_error_rate:.1%}"
        )
    p95 = canary.latency_p95_ms
    limit = policy.max_latency_p95_ms
    if (
        limit is not None
        and p95 is not None
        and p95 > limit
        and len(canary.latencies) >= max(1, policy.min_requests)
    ):
        breaches.append(f"p95 latency {p95:.0f} ms > max {policy.max_latency_p95_ms:.0f} ms")
    fb = canary.feedback_score
    if policy.min_feedback_score is not None and fb is not None and fb < policy.min_feedback_score:
        breaches.append(
            f"feedback score {fb:.2f} over {len(canary.scores)} ratings "
            f"< min {policy.min_feedback_score:.2f}"
        )
    if policy.require_evaluation and evaluation[0] is False:
        breaches.append(f"its evaluation failed ({', '.join(evaluation[1].get('failed', []))})")
    if breaches:
        return Verdict("rollback", "; ".join(breaches), evidence)
    enough = canary.requests >= policy.min_requests
    evaluated = evaluation[0] is True or not policy.require_evaluation
    if enough and evaluated and elapsed_s >= policy.watch_s:
        parts = [f"{canary.requests} canary requests over {elapsed_s:.0f}s"]
        if er is not None:
            parts.append(f"error rate {er:.1%}")
        if p95 is not None:
            parts.append(f"p95 {p95:.0f} ms")
        if fb is not None:
            parts.append(f"feedback {fb:.2f}")
        if policy.require_evaluation:
            parts.append("evaluation passed")
        return Verdict("rollout", "healthy canary: " + ", ".join(parts), evidence)
    if elapsed_s >= policy.max_watch_s:
        missing = []
        if not enough:
            missing.append(f"{canary.requests}/{policy.min_requests} canary requests")
        if not evaluated:
            missing.append("no completed evaluation of the canary version")
        why = f"watched {elapsed_s:.0f}s (max_watch_s) with " + " and ".join(missing)
        if not evaluated:  # an unevaluated canary is never rolled out when one is required
            return Verdict("rollback", why, evidence)
        return Verdict(policy.on_insufficient_traffic, why, evidence)
    return Verdict("wait", "", evidence)


# sensors -------------------------------------------------------------------------------------
@sensor(on=DeploymentReady, name="herald.deployments.rollout_start")
async def on_ready(msg: DeploymentReady, ctx: SensorContext) -> list[Message]:
    """A revision of a ``canary``-strategy deployment that serves a canary → deployment.watch."""
    store = Services.of_sensor(ctx).deployment_store
    dep = await asyncio.to_thread(store.find, msg.name)
    if dep is None or dep.revision != msg.revision or dep.rollout.strategy != "canary":
        return []
    pair = _canary(dep)
    if pair is None:
        return []
    canary, stable = pair
    return [
        DeploymentWatch(
            name=dep.name,
            canary_version=canary,
            stable_version=stable,
            revision=dep.revision,
            since=ctx.event.time.timestamp(),
            policy=dep.rollout.model_dump(),
        )
    ]


def _canary(dep: Deployment) -> tuple[str, str] | None:
    for t in dep.targets:
        if t.version is None:
            continue
        pair = canary_of(dep, t.version)
        if pair is not None and pair[1].version is not None:
            return t.version, pair[1].version
    return None


@sensor(on=DeploymentWatch, name="herald.deployments.rollout_watch")
def on_watch(msg: DeploymentWatch, ctx: SensorContext) -> None:
    """Start the ``deployment.watch`` job for the canary."""
    ctx.run_job(WATCH_JOB, msg.payload())


# the job ---------------------------------------------------------------------------------------
def _still_canary(store: DeploymentStore, name: str, canary_version: str) -> bool:
    dep = store.find(name)
    pair = _canary(dep) if dep is not None else None
    return pair is not None and pair[0] == canary_version


def measure(
    services: Services, name: str, canary_version: str, stable_version: str, since: float
) -> tuple[VersionStats, VersionStats, tuple[bool | None, dict[str, Any]]]:
    """Read the request log, feedback and evaluations of this Herald."""
    stats = version_stats(
        list(services.request_log.read(since=since, model=name)),
        services.monitoring.scores_by_response(),
        name,
        since,
    )
    evals = services.evaluations.list_evaluations(model_version=canary_version, status="completed")
    return (
        stats.get(canary_version, VersionStats()),
        stats.get(stable_version, VersionStats()),
        evaluation_verdict(evals),
    )


@job(name=WATCH_JOB, executor="inline", max_attempts=3)
def watch_canary(
    name: str,
    canary_version: str,
    stable_version: str,
    revision: int,
    since: float | None = None,
    policy: dict[str, Any] | None = None,
    ctx: JobContext | None = None,
) -> list[Message]:
    """Watch ``canary_version`` of deployment ``name`` and return the verdict message:
    ``deployment.traffic.changed`` (rollout) or ``deployment.rollback``."""
    pol = RolloutPolicy.model_validate(policy or {})
    services = Services.of_job(ctx)
    since = since or time.time()  # when the canary took traffic (its deployment.ready)
    while True:
        if ctx is not None and ctx.cancelled:
            return []
        if not _still_canary(services.deployment_store, name, canary_version):
            if ctx is not None:
                ctx.log(f"{canary_version} is no longer a canary of {name}; nothing to decide")
            return []
        canary, stable, evaluation = measure(services, name, canary_version, stable_version, since)
        elapsed = time.time() - since
        v = judge(pol, canary, stable, elapsed_s=elapsed, evaluation=evaluation)
        if ctx is not None:
            ctx.progress(
                min(elapsed / pol.watch_s, 1.0) if pol.watch_s else None,
                f"canary {canary_version}: {canary.requests} requests, {elapsed:.0f}s watched",
                canary_requests=float(canary.requests),
            )
        if v.decision == "rollout":
            log.info("deployment %s: rolling out %s (%s)", name, canary_version, v.reason)
            return [
                DeploymentTrafficChanged(
                    name=name,
                    rollout_of=canary_version,
                    evidence=v.evidence,
                    reason=f"rollout of {canary_version}: {v.reason}",
                )
            ]
        if v.decision == "rollback":
            log.warning("deployment %s: rolling back %s (%s)", name, canary_version, v.reason)
            return [
                DeploymentRollback(
                    name=name,
                    away_from=canary_version,
                    evidence=v.evidence,
                    reason=f"canary {canary_version} rolled back: {v.reason}",
                )
            ]
        time.sleep(pol.check_interval_s)
