"""Built-in deployment sensors (a plugin: importing it is cheap).

    deployment.requested        → resolve aliases, store a revision, apply → deployment.ready|failed
    deployment.traffic.changed  → new weights as a revision (replicas reused) → deployment.ready
    deployment.rollback         → the previous targets as a revision → deployment.rolledback
    deployment.traffic.changed (rollout_of) → the canary replaces the stable version
                                  → deployment.ready + deployment.rolledout
    deployment.delete           → drain and unload → deployment.deleted
    model.promoted              → deployment.requested for deployments following that alias
                                  (rollout strategy canary: deployment.traffic.changed adding
                                  the new version as a canary; rollout.py watches it)
    evaluation.completed        → deployment.rollback when a canary regressed (canary.py)

The desired state is written to the deployment store; the process that serves HTTP applies it
(in ``herald up`` this sensor applies it in-process and reports the outcome; with separate
``herald worker`` / ``herald api`` processes the API processes apply it and report). A request
that cannot work (bad target, unknown model version) ends in ``deployment.failed`` at once.
Redelivered events are recognised by their id and do not create a second revision.
"""

from __future__ import annotations

import asyncio
from typing import Any

from herald.errors import HeraldError
from herald.messages.base import Message
from herald.messages.lifecycle import ModelPromoted
from herald.registry import Registry
from herald.sensors.base import SensorContext, sensor
from herald.services import Services
from herald.serving.deployments import canary as _canary_sensor  # noqa: F401  (registers)
from herald.serving.deployments import rollout as _rollout_sensors  # noqa: F401  (registers)
from herald.serving.deployments.manager import DeploymentManager
from herald.serving.deployments.messages import (
    DeploymentDelete,
    DeploymentDeleted,
    DeploymentFailed,
    DeploymentRequested,
    DeploymentRollback,
    DeploymentRolledBack,
    DeploymentRolledOut,
    DeploymentTrafficChanged,
)
from herald.serving.deployments.models import (
    Deployment,
    InvalidDeployment,
    Target,
    apply_weights,
    parse_deployment,
)


def follow_aliases_enabled(services: Services) -> bool:
    return services.settings.serving.deployments.follow_aliases


def _serving_manager(services: Services) -> DeploymentManager | None:
    """The deployment manager when this process serves HTTP (it applies revisions)."""
    mgr = services.deployments
    return mgr if mgr is not None and mgr.serving else None


def resolve_targets(targets: list[Target], registry: Registry) -> list[Target]:
    """Each target with ``version`` set to the concrete ``models:/name/N`` it means now."""
    out: list[Target] = []
    for t in targets:
        mv = registry.resolve(t.model)
        if mv.status != "ready":
            raise InvalidDeployment(f"{t.model} resolves to {mv.uri}, which is {mv.status}")
        out.append(t.model_copy(update={"version": mv.uri}))
    return out


def _cause(ctx: SensorContext) -> dict[str, str | None]:
    return {"id": ctx.event.id, "type": ctx.event.type, "correlationid": ctx.event.correlationid}


async def _store_and_apply(dep: Deployment, ctx: SensorContext) -> Message | None:
    """Write ``dep`` as a new revision (once per event) and apply it if this process serves."""
    services = Services.of_sensor(ctx)
    store = services.deployment_store
    mgr = _serving_manager(services)

    async def write() -> Deployment:
        existing = await asyncio.to_thread(store.find, dep.name)
        if existing is not None and existing.cause.get("id") == ctx.event.id:
            return existing  # a redelivered event: the revision exists
        return await asyncio.to_thread(store.put, dep.model_copy(update={"cause": _cause(ctx)}))

    if mgr is None:
        await write()
        return None  # the serving processes apply it and report
    async with mgr.lock(dep.name):
        stored = await write()
        outcome = await mgr.apply_locked(dep.name)
        if outcome is None:  # already applied (redelivery)
            current = mgr.active.get(dep.name)
            if current is None or current.revision != stored.revision:
                return None
        return outcome


def _failed(name: str, exc: HeraldError) -> DeploymentFailed:
    return DeploymentFailed(name=name, error=exc.message)


# loading a revision's replicas (a real model on a busy CPU) can take minutes: the sensors that
# apply revisions get more than the default handler time limit
APPLY_TIMEOUT_S = 900.0


@sensor(on=DeploymentRequested, name="herald.deployments.requested", timeout_s=APPLY_TIMEOUT_S)
async def on_deployment_requested(msg: DeploymentRequested, ctx: SensorContext) -> Any:
    """Create or replace a deployment (blue-green: traffic moves once the new one is healthy)."""
    try:
        dep = parse_deployment(
            {
                "name": msg.name,
                "targets": msg.targets,
                "guardrails": msg.guardrails,
                "follow_aliases": msg.follow_aliases,
                "reason": msg.reason,
                **({"canary": msg.canary} if msg.canary is not None else {}),
                **({"rollout": msg.rollout} if msg.rollout is not None else {}),
            }
        )
        services = Services.of_sensor(ctx)
        dep.targets = await asyncio.to_thread(resolve_targets, dep.targets, services.registry)
        previous = await asyncio.to_thread(services.deployment_store.find, msg.name)
        if previous is not None:
            dep.history = [*previous.history, previous.targets][-20:]
    except HeraldError as exc:
        return _failed(msg.name, exc)
    return await _store_and_apply(dep, ctx)


@sensor(on=DeploymentTrafficChanged, name="herald.deployments.traffic", timeout_s=APPLY_TIMEOUT_S)
async def on_traffic_changed(msg: DeploymentTrafficChanged, ctx: SensorContext) -> Any:
    """Apply new weights (the loaded replicas are reused; nothing reloads) and add the targets
    in ``add`` (a canary: loaded and health-checked before it takes traffic)."""
    services = Services.of_sensor(ctx)
    try:
        current = await asyncio.to_thread(services.deployment_store.get, msg.name)
        if current.cause.get("id") == ctx.event.id:
            return await _store_and_apply(current, ctx)
        if msg.rollout_of is not None:
            return await _complete_rollout(current, msg, ctx)
        targets = apply_weights(current.targets, msg.weights)
        if msg.add:
            added = parse_deployment({"name": msg.name, "targets": msg.add}).targets
            # duplicates, the 8-target limit and the weight sum are checked on the whole set
            parse_deployment({"name": msg.name, "targets": [*targets, *added]})
            resolved = await asyncio.to_thread(resolve_targets, added, services.registry)
            targets = [*targets, *resolved]
    except HeraldError as exc:
        return _failed(msg.name, exc)
    dep = current.model_copy(
        update={
            "targets": targets,
            "history": [*current.history, current.targets][-20:],
            "reason": msg.reason or "traffic changed",
            "status": "pending",
            "error": None,
        }
    )
    return await _store_and_apply(dep, ctx)


async def _complete_rollout(
    current: Deployment, msg: DeploymentTrafficChanged, ctx: SensorContext
) -> list[Message]:
    """The canary ``msg.rollout_of`` takes 100 %: the stable target (which may follow an alias)
    now points at the canary version, the separate canary target goes, other targets keep
    their weights. Loaded canary replicas are reused (same version), the stable ones drain."""
    version = msg.rollout_of
    canary = next((t for t in current.targets if t.version == version and t.weight > 0), None)
    if canary is None:
        return []  # already rolled out or rolled back (a late verdict)
    others = [t for t in current.targets if t.version != version and t.weight > 0]
    stable = max(others, key=lambda t: t.weight) if others else None
    if stable is None:
        targets = [canary.model_copy(update={"weight": 100.0})]
    else:
        promoted = stable.model_copy(
            update={
                "version": version,
                "weight": 100.0,
                "replicas": max(stable.replicas, canary.replicas),
                "backend": canary.backend,
                "options": canary.options,
            }
        )
        targets = [promoted if t is stable else t.model_copy(update={"weight": 0.0})
                   for t in current.targets if t is not canary and t.weight > 0]  # fmt: skip
        targets = [t for t in targets if t.weight > 0]
    dep = current.model_copy(
        update={
            "targets": targets,
            "history": [*current.history, current.targets][-20:],
            "reason": msg.reason or f"rolled out {version}",
            "status": "pending",
            "error": None,
        }
    )
    outcome = await _store_and_apply(dep, ctx)
    stored = await asyncio.to_thread(Services.of_sensor(ctx).deployment_store.get, msg.name)
    out: list[Message] = [
        DeploymentRolledOut(
            name=msg.name,
            version=str(version),
            replaced=stable.version if stable is not None else None,
            revision=stored.revision,
            evidence=msg.evidence,
            reason=msg.reason,
        )
    ]
    if outcome is not None:
        out.append(outcome)
    return out


@sensor(on=DeploymentRollback, name="herald.deployments.rollback", timeout_s=APPLY_TIMEOUT_S)
async def on_rollback(msg: DeploymentRollback, ctx: SensorContext) -> Any:
    """Restore the previous revision's targets and weights (as a new revision)."""
    try:
        store = Services.of_sensor(ctx).deployment_store
        current = await asyncio.to_thread(store.get, msg.name)
        if current.cause.get("id") == ctx.event.id:
            return None
        if msg.away_from is not None:
            if not any(t.version == msg.away_from and t.weight > 0 for t in current.targets):
                return None  # already left (a second verdict on the same canary)
            restored, history = _away_from(current, msg.away_from)
        elif not current.history:
            raise InvalidDeployment(
                f"deployment {msg.name!r} has no earlier revision to roll back to"
            )
        else:
            restored, history = current.history[-1], current.history[:-1]
    except HeraldError as exc:
        return _failed(msg.name, exc)
    dep = current.model_copy(
        update={
            "targets": restored,
            "history": history,
            "reason": msg.reason or "rollback",
            "status": "pending",
            "error": None,
        }
    )
    outcome = await _store_and_apply(dep, ctx)
    stored = await asyncio.to_thread(Services.of_sensor(ctx).deployment_store.get, msg.name)
    out: list[Message] = [
        DeploymentRolledBack(
            name=msg.name,
            revision=stored.revision,
            restored_revision=max(1, current.revision - 1),
            targets=[t.model_dump(exclude={"options"}) for t in restored],
            reason=msg.reason,
            away_from=msg.away_from,
            evidence=msg.evidence,
        )
    ]
    if outcome is not None:
        out.append(outcome)
    return out


def _away_from(current: Deployment, version: str) -> tuple[list[Target], list[list[Target]]]:
    """The newest earlier targets without ``version`` (and the history before them); else the
    current targets with ``version`` at weight 0, which needs another version with weight."""
    for i in range(len(current.history) - 1, -1, -1):
        if all(t.version != version for t in current.history[i]):
            return current.history[i], current.history[:i]
    targets = [t.model_copy(update={"weight": 0.0}) if t.version == version else t
               for t in current.targets]  # fmt: skip
    if sum(t.weight for t in targets) <= 0:
        raise InvalidDeployment(
            f"cannot leave {version}: deployment {current.name!r} serves nothing else"
        )
    return targets, [*current.history, current.targets][-20:]


@sensor(on=DeploymentDelete, name="herald.deployments.delete")
async def on_delete(msg: DeploymentDelete, ctx: SensorContext) -> Any:
    """Remove a deployment; its replicas drain and unload."""
    services = Services.of_sensor(ctx)
    try:
        dep = await asyncio.to_thread(services.deployment_store.delete, msg.name)
    except HeraldError as exc:
        return _failed(msg.name, exc)
    mgr = _serving_manager(services)
    if mgr is not None:
        async with mgr.lock(msg.name):
            await mgr.remove(msg.name)
    return DeploymentDeleted(name=msg.name, revision=dep.revision)


@sensor(on=ModelPromoted, name="herald.deployments.follow_alias")
async def on_model_promoted(msg: ModelPromoted, ctx: SensorContext) -> list[Message]:
    """Redeploy the deployments whose targets follow the alias that moved (disable with
    ``serving.deployments.follow_aliases: false`` or per deployment)."""
    services = Services.of_sensor(ctx)
    if not follow_aliases_enabled(services):
        return []
    out: list[Message] = []
    for dep in await asyncio.to_thread(services.deployment_store.list):
        if not dep.follow_aliases:
            continue
        hit = any(t.alias == (msg.name, msg.alias) and t.version != msg.uri for t in dep.targets)
        if hit and dep.rollout.strategy == "canary":
            canary = start_canary(dep, msg)
            if canary is not None:
                out.append(canary)
        elif hit:
            out.append(
                DeploymentRequested(
                    name=dep.name,
                    targets=[t.model_dump(exclude={"version"}) for t in dep.targets],
                    guardrails=dep.guardrails,
                    follow_aliases=True,
                    canary=dep.canary.model_dump(),
                    rollout=dep.rollout.model_dump(),
                    reason=f"{msg.name}@{msg.alias} moved to version {msg.version}",
                )
            )
    return out


def start_canary(dep: Deployment, msg: ModelPromoted) -> DeploymentTrafficChanged | None:
    """The first step of a progressive rollout: the promoted version joins ``dep`` as a canary
    with ``rollout.canary_weight`` % beside the alias target's current version (which keeps the
    rest). None when the version is already a target (a canary in progress)."""
    if any(t.version == msg.uri for t in dep.targets):
        return None
    stable = next(t for t in dep.targets if t.alias == (msg.name, msg.alias))
    if stable.version is None or stable.weight <= 0:
        return None
    w = dep.rollout.canary_weight
    live = sum(t.weight for t in dep.targets if t.weight > 0)
    # the canary takes w % of the whole, the stable target gives it up
    stable_weight = max(stable.weight - live * w / 100.0, 0.0)
    return DeploymentTrafficChanged(
        name=dep.name,
        weights={stable.version: round(stable_weight, 6)},
        add=[
            {
                "model": msg.uri,
                "weight": round(live * w / 100.0, 6),
                "replicas": stable.replicas,
                "backend": stable.backend,
                "options": stable.options,
            }
        ],
        reason=f"canary: {msg.name}@{msg.alias} moved to version {msg.version}; "
        f"{w:g} % of {dep.name} goes to {msg.uri} while it is watched",
    )
