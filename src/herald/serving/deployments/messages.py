"""Message types of deployments (a public model name served by registry versions).

deployment.requested ──▶ deployment.ready | deployment.failed
deployment.traffic.changed (new weights) ──▶ deployment.ready (the new revision)
deployment.rollback ──▶ deployment.rolledback      deployment.delete ──▶ deployment.deleted
model.promoted (an alias a deployment follows moved) ──▶ deployment.requested (redeploy)
evaluation.completed (a canary version regressed) ──▶ deployment.rollback (away_from the canary)
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from herald.messages.base import Message

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


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
    reason: str = ""


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
    reason: str = ""


class DeploymentRollback(Message, type="deployment.rollback"):
    """Go back to the previous revision's targets and weights."""

    name: str
    reason: str = ""
    away_from: str | None = Field(
        None,
        description="a version (models:/x/3) to leave: go back to the newest earlier revision "
        "that does not serve it, or, if there is none, set its weight to 0",
    )


class DeploymentRolledBack(Message, type="deployment.rolledback"):
    """A deployment went back to an earlier revision's targets (as a new revision)."""

    name: str
    revision: int
    restored_revision: int
    targets: list[dict[str, Any]]
    reason: str = ""


class DeploymentDelete(Message, type="deployment.delete"):
    """Stop serving a deployment (its replicas are drained and unloaded)."""

    name: str
    reason: str = ""


class DeploymentDeleted(Message, type="deployment.deleted"):
    """A deployment is gone."""

    name: str
    revision: int
