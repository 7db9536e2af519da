"""Message types of deployments (a public model name served by registry versions).

deployment.requested ──▶ deployment.ready | deployment.failed
deployment.traffic.changed (new weights) ──▶ deployment.ready (the new revision)
deployment.rollback ──▶ deployment.rolledback      deployment.delete ──▶ deployment.deleted
model.promoted (an alias a deployment follows moved) ──▶ deployment.requested (redeploy)
evaluation.completed (a canary version regressed) ──▶ deployment.rollback (away_from the canary)

Progressive rollout (a deployment with ``rollout: {strategy: canary}``, rollout.py):
model.promoted ──▶ deployment.traffic.changed (add the new version as a canary)
deployment.ready (with a canary) ──▶ deployment.watch ──▶ deployment.watch job
  ──▶ deployment.traffic.changed (rollout_of: canary → 100 %) ──▶ deployment.rolledout
  or  deployment.rollback (away_from: canary)                 ──▶ deployment.rolledback
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from herald.messages.base import Message
from herald.security.secrets import refusal_message, refused_option

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


def _caller_targets(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Refuse target options that name a server env var or carry a key in clear."""
    for i, t in enumerate(targets):
        options = t.get("options") if isinstance(t, dict) else None
        key = refused_option(options if isinstance(options, dict) else None)
        if key is not None:
            raise ValueError(refusal_message(key, f"targets[{i}].options"))
    return targets


class DeploymentRequested(Message, type="deployment.requested"):
    """Create or replace a deployment: a public model name → weighted registry targets."""

    name: str = Field(pattern=NAME_PATTERN, description="public model name clients send")
    targets: list[dict[str, Any]] = Field(
        min_length=1,
        description="[{'model': 'models:/x@champion', 'weight': 90, 'replicas': 1, "
        "'backend': None, 'options': {}}]",
    )
    guardrails: list[dict[str, Any]] | None = Field(
        None, description="guardrail rules of this deployment (None: the serving defaults)"
    )
    follow_aliases: bool = Field(True, description="redeploy when a target's alias moves")
    canary: dict[str, Any] | None = Field(
        None,
        description="canary rollback policy: {'enabled': True, 'compare_with_stable': True, "
        "'min_scores': {'exact_match': 0.6}, 'on_failed_thresholds': True}",
    )
    rollout: dict[str, Any] | None = Field(
        None,
        description="how alias moves reach it: {'strategy': 'canary', 'canary_weight': 10, "
        "'min_requests': 20, 'watch_s': 300, 'max_error_rate': 0.05, 'max_latency_p95_ms': "
        "2000, 'require_evaluation': False} (default: replace at once)",
    )
    reason: str = ""

    @field_validator("targets")
    @classmethod
    def _no_env_reference(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _caller_targets(v)


class DeploymentReady(Message, type="deployment.ready"):
    """A deployment revision is loaded, health-checked and receiving traffic."""

    name: str
    revision: int
    targets: list[dict[str, Any]] = Field(description="targets with their resolved versions")
    replicas: int
    instance: str = Field("", description="the serving process (host:pid) that applied it")


class DeploymentFailed(Message, type="deployment.failed"):
    """A deployment revision could not be applied; the previous one keeps serving."""

    name: str
    revision: int | None = None
    error: str
    instance: str = ""


class DeploymentTrafficChanged(Message, type="deployment.traffic.changed"):
    """New weights for a deployment's targets (by target model URI or resolved version)."""

    name: str
    weights: dict[str, float] = Field(
        default_factory=dict, description="{'models:/x/3': 100, 'models:/x@champion': 0}"
    )
    add: list[dict[str, Any]] = Field(
        default_factory=list,
        description="targets to add with this change (a canary), with their own weight: "
        "[{'model': 'models:/x/3', 'weight': 10, 'replicas': 1}]",
    )
    rollout_of: str | None = Field(
        None,
        description="complete the rollout of this canary version (models:/x/3): it replaces the "
        "stable version (in the stable target, which keeps following its alias) at 100 %; "
        "'weights' and 'add' are ignored",
    )
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="why (the watch's measurements)"
    )
    reason: str = ""

    @field_validator("add")
    @classmethod
    def _no_env_reference(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _caller_targets(v)


class DeploymentRollback(Message, type="deployment.rollback"):
    """Go back to the previous revision's targets and weights."""

    name: str
    reason: str = ""
    away_from: str | None = Field(
        None,
        description="a version (models:/x/3) to leave: go back to the newest earlier revision "
        "that does not serve it, or, if there is none, set its weight to 0",
    )
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="why (the watch's or the evaluation's measurements)"
    )


class DeploymentRolledBack(Message, type="deployment.rolledback"):
    """A deployment went back to an earlier revision's targets (as a new revision)."""

    name: str
    revision: int
    restored_revision: int
    targets: list[dict[str, Any]]
    reason: str = ""
    away_from: str | None = Field(None, description="the version that was left (a canary)")
    evidence: dict[str, Any] = Field(default_factory=dict, description="copied from the rollback")


class DeploymentWatch(Message, type="deployment.watch"):
    """Watch a deployment's canary and decide: roll it out to 100 % or roll it back."""

    name: str
    canary_version: str = Field(description="models:/x/3 being watched")
    stable_version: str = Field(description="models:/x/2 it would replace")
    revision: int = Field(description="the deployment revision that added the canary")
    since: float | None = Field(None, description="epoch time the canary took traffic")
    policy: dict[str, Any] = Field(default_factory=dict, description="the rollout policy used")


class DeploymentRolledOut(Message, type="deployment.rolledout"):
    """A canary took all of a deployment's traffic (the end of a progressive rollout)."""

    name: str
    version: str = Field(description="models:/x/3 now serving 100 %")
    replaced: str | None = Field(None, description="the stable version it replaced")
    revision: int
    evidence: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""


class DeploymentDelete(Message, type="deployment.delete"):
    """Stop serving a deployment (its replicas are drained and unloaded)."""

    name: str
    reason: str = ""


class DeploymentDeleted(Message, type="deployment.deleted"):
    """A deployment is gone."""

    name: str
    revision: int
