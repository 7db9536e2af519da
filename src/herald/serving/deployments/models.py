"""Deployments as data: targets with weights, revisions, and the routing arithmetic
(weighted choice, sticky users by consistent hashing)."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from herald.errors import HeraldError, NotFound
from herald.registry.models import parse_model_uri
from herald.security.secrets import check_caller_options

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
Status = Literal["pending", "ready", "failed"]


class InvalidDeployment(HeraldError):
    """A deployment request is invalid (bad name, target, weights...)."""

    code = "invalid_deployment"
    status = 422


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"


class Target(BaseModel):
    """One registry version (or alias) behind a deployment, with its traffic share."""

    model: str = Field(description="models:/name@alias or models:/name/3 (as requested)")
    weight: float = Field(100.0, ge=0, le=100, description="relative traffic share")
    replicas: int = Field(1, ge=1, le=16, description="loaded copies (least-outstanding balanced)")
    backend: str | None = Field(None, description="override the backend chosen for the version")
    options: dict[str, Any] = Field(default_factory=dict, description="backend options")
    version: str | None = Field(None, description="the resolved models:/name/N (set at deploy)")

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        v = v.strip()
        if not v.startswith("models:/"):
            raise ValueError(f"{v!r} is not a registry URI (models:/name@alias or models:/name/3)")
        try:
            parse_model_uri(v)
        except HeraldError as exc:
            raise ValueError(exc.message) from None
        return v

    @property
    def alias(self) -> tuple[str, str] | None:
        """(model name, alias) when the target follows an alias."""
        ref = parse_model_uri(self.model)
        return (ref.name, ref.alias) if ref.alias else None

    @property
    def key(self) -> str:
        """The name traffic weights use: the resolved version, else the model URI."""
        return self.version or self.model


class CanaryPolicy(BaseModel):
    """When an evaluation of a deployment's canary version rolls the canary back
    (the ``herald.deployments.canary_regression`` sensor; disable it for every deployment with
    ``POST /v1/sensors/herald.deployments.canary_regression/disable``)."""

    enabled: bool = Field(True, description="Roll this deployment's canary back on regression.")
    compare_with_stable: bool = Field(
        True,
        description="Regression = worse than the stable version beyond the 95 % paired-bootstrap "
        "interval on the suite's primary metric (the stable version is evaluated if needed).",
    )
    min_scores: dict[str, float] = Field(
        default_factory=dict, description="metric → lowest acceptable value of the canary"
    )
    on_failed_thresholds: bool = Field(
        True, description="A canary evaluation that fails the suite's own thresholds regressed."
    )


class RolloutPolicy(BaseModel):
    """How a new version reaches a deployment when an alias it follows moves
    (``herald.deployments.follow_alias``; see docs/guides/deployments.md#progressive-rollout).

    ``replace`` (the default) swaps the whole deployment to the new version at once (blue-green).
    ``canary`` deploys the new version beside the stable one with ``canary_weight`` % of the
    traffic; ``deployment.watch`` then judges the canary on its online metrics (request log:
    error rate, p95 latency, feedback) and its evaluation, and either rolls it out to 100 %
    (``deployment.rolledout``) or rolls it back (``deployment.rolledback``)."""

    strategy: Literal["replace", "canary"] = Field(
        "replace", description="replace: switch at once; canary: watch a share first"
    )
    canary_weight: float = Field(
        10.0,
        gt=0,
        lt=50,
        description="canary traffic share (%); below 50, so the stable version keeps the larger "
        "share (what makes a version the canary)",
    )
    min_requests: int = Field(
        20, ge=0, description="canary requests needed before a rollout verdict"
    )
    watch_s: float = Field(300.0, ge=0, description="shortest watch before rolling out")
    max_watch_s: float = Field(
        3600.0, gt=0, description="longest watch; then on_insufficient_traffic decides"
    )
    check_interval_s: float = Field(5.0, gt=0, description="re-check period of the watch")
    max_error_rate: float = Field(
        0.05, ge=0, le=1, description="canary error rate (non-200 share) above this → rollback"
    )
    max_latency_p95_ms: float | None = Field(
        None, gt=0, description="canary p95 latency above this → rollback (None: not checked)"
    )
    min_feedback_score: float | None = Field(
        None, ge=0, le=1, description="mean feedback score of canary answers below this → rollback"
    )
    require_evaluation: bool = Field(
        False,
        description="roll out only when the canary version has a completed evaluation that "
        "passed its suite thresholds (evaluated at registration)",
    )
    on_insufficient_traffic: Literal["rollback", "rollout"] = Field(
        "rollback", description="verdict when max_watch_s passes before min_requests"
    )

    @model_validator(mode="after")
    def _windows(self) -> RolloutPolicy:
        if self.max_watch_s < self.watch_s:
            raise ValueError(
                f"max_watch_s ({self.max_watch_s:g}) is below watch_s ({self.watch_s:g})"
            )
        return self


class Deployment(BaseModel):
    """The desired state of one public model name (a new revision on every change)."""

    name: str
    targets: list[Target] = Field(min_length=1, max_length=8)
    guardrails: list[dict[str, Any]] | None = None
    follow_aliases: bool = True
    canary: CanaryPolicy = Field(default_factory=CanaryPolicy)
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy)
    revision: int = 0
    status: Status = "pending"
    error: str | None = None
    reason: str = ""
    history: list[list[Target]] = Field(default_factory=list, description="earlier targets")
    cause: dict[str, str | None] = Field(default_factory=dict, description="causing event")
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                f"invalid deployment name {v!r}: 1-128 letters, digits, '.', '_', ':' or '-'"
            )
        return v

    @model_validator(mode="after")
    def _weights(self) -> Deployment:
        if sum(t.weight for t in self.targets) <= 0:
            raise ValueError("at least one target needs a weight above 0")
        keys = [t.model for t in self.targets]
        if len(set(keys)) != len(keys):
            raise ValueError("the same target model is listed twice")
        return self

    def summary(self) -> list[dict[str, Any]]:
        return [t.model_dump(exclude_defaults=False, exclude={"options"}) for t in self.targets]


def parse_deployment(data: dict[str, Any]) -> Deployment:
    """Validate a deployment, turning pydantic errors into an actionable 422 (target options
    that name a server env var or carry a key in clear: 422 ``env_reference_refused``)."""
    for i, t in enumerate(data.get("targets") or []):
        if isinstance(t, dict) and isinstance(t.get("options"), dict):
            check_caller_options(t["options"], f"targets.{i}.options")
    try:
        return Deployment.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'deployment'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise InvalidDeployment(f"invalid deployment: {problems}") from None


def apply_weights(targets: Sequence[Target], weights: dict[str, float]) -> list[Target]:
    """Targets with new weights; keys are a target's model URI or its resolved version."""
    known = {t.model: i for i, t in enumerate(targets)}
    known.update({t.version: i for i, t in enumerate(targets) if t.version})
    unknown = [k for k in weights if k not in known]
    if unknown:
        raise InvalidDeployment(
            f"unknown target(s) {', '.join(unknown)}; the deployment has "
            + ", ".join(f"{t.model} ({t.version})" if t.version else t.model for t in targets)
        )
    out = [t.model_copy() for t in targets]
    for k, w in weights.items():
        if not 0 <= w <= 100:
            raise InvalidDeployment(f"weight of {k} must be within 0..100, got {w}")
        out[known[k]].weight = float(w)
    if sum(t.weight for t in out) <= 0:
        raise InvalidDeployment("at least one target needs a weight above 0")
    return out


def canary_of(dep: Deployment, version: str) -> tuple[Target, Target] | None:
    """(canary, stable) when ``version`` takes a smaller, non-zero share of ``dep``'s traffic
    than another version; the stable one is the version with the largest share."""
    live = [t for t in dep.targets if t.weight > 0]
    mine = [t for t in live if t.version == version]
    others = [t for t in live if t.version != version]
    if not mine or not others:
        return None
    canary = mine[0]
    stable = max(others, key=lambda t: t.weight)
    return (canary, stable) if canary.weight < stable.weight else None


def user_point(deployment: str, user: str) -> float:
    """A stable point in [0, 1) for ``user`` (sticky routing: the same user, the same target
    while the weights stay; moving weights moves only the users in the changed slice)."""
    digest = hashlib.blake2b(f"{deployment}\x00{user}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def pick(weights: Sequence[float], point: float | None = None) -> int:
    """Index chosen by ``weights`` at ``point`` (random when None); weights sum > 0."""
    total = sum(weights)
    x = (random.random() if point is None else point) * total
    acc = 0.0
    last = 0
    for i, w in enumerate(weights):
        if w <= 0:
            continue
        last = i
        acc += w
        if x < acc:
            return i
    return last
