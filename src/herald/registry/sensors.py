"""Built-in registry sensors: the registry's write side is driven by messages.

- ``model.register``     → add a version (idempotency key = the event id) → ``model.registered``
  (+ ``model.promoted`` for each alias asked for)
- ``model.promote``      → move an alias → ``model.promoted``
- ``model.archive``      → archive a version → ``model.archived``
- ``finetune.completed`` → ``model.register`` carrying the full lineage of the fine-tuning run

Every handler is safe to retry: registry writes are keyed by the causing event's id, so a
redelivered event returns what the first delivery did. An invalid request (unknown model or
version, archived version promoted, bad alias) raises a :class:`herald.HeraldError`; the sensor
runner retries it and then dead-letters it with that message (a ``sensor.deadlettered`` event,
visible in ``herald dead-letters`` and the API). Nothing is emitted for it.

Sensors reach the registry of the running Herald through their context (``ctx.services``).
"""

from __future__ import annotations

from typing import Any

from herald.messages.envelope import Envelope
from herald.messages.lifecycle import (
    FinetuneCompleted,
    ModelArchive,
    ModelArchived,
    ModelPromote,
    ModelPromoted,
    ModelRegister,
    ModelRegistered,
)
from herald.registry.models import check_alias
from herald.security.files import check_message_paths
from herald.sensors.base import SensorContext, SensorRegistry, default_registry, sensor
from herald.services import Services


def _actor(event: Envelope) -> str:
    return f"{event.source} ({event.type} {event.id})"


def on_model_register(msg: ModelRegister, ctx: SensorContext) -> list[Any]:
    """Register a model version; apply any aliases it asks for."""
    for alias in msg.aliases:
        check_alias(alias)  # refuse before writing anything
    # a local artifact_uri must be a file the server may read (s3:// etc. go to their store)
    services = Services.of_sensor(ctx)
    check_message_paths("model.register", msg, services.settings)
    reg = services.registry
    event = ctx.event
    lineage = {
        **msg.lineage,
        "register_event_id": event.id,
        "correlationid": event.correlationid,
    }
    if event.causationid:
        lineage.setdefault("causationid", event.causationid)
    mv, created = reg.register_model_version(
        msg.name,
        artifact_uri=msg.artifact_uri,
        kind=msg.kind,
        base_model=msg.base_model,
        dataset=msg.dataset,
        run_id=msg.run_id,
        job_id=msg.job_id,
        config=msg.config,
        metrics=msg.metrics,
        chat_template=msg.chat_template,
        tags=msg.tags,
        description=msg.description,
        lineage=lineage,
        idempotency_key=f"model.register:{event.id}",
    )
    out: list[Any] = [
        ModelRegistered(
            name=mv.name,
            version=mv.version,
            uri=mv.uri,
            artifact_uri=mv.artifact_uri,
            kind=mv.kind,
            aliases=list(msg.aliases),
            created=created,
        )
    ]
    for alias in dict.fromkeys(msg.aliases):
        previous = reg.set_alias(
            mv.name,
            alias,
            mv.version,
            reason="requested at registration",
            actor=_actor(event),
            idempotency_key=f"model.register:{event.id}:{alias}",
        )
        out.append(
            ModelPromoted(
                name=mv.name,
                version=mv.version,
                alias=alias,
                previous_version=previous,
                uri=mv.uri,
            )
        )
    return out


def on_model_promote(msg: ModelPromote, ctx: SensorContext) -> ModelPromoted:
    """Point an alias at a version."""
    previous = Services.of_sensor(ctx).registry.set_alias(
        msg.name,
        msg.alias,
        msg.version,
        reason=msg.reason,
        actor=_actor(ctx.event),
        idempotency_key=f"model.promote:{ctx.event.id}",
    )
    return ModelPromoted(
        name=msg.name,
        version=msg.version,
        alias=msg.alias,
        previous_version=previous,
        uri=f"models:/{msg.name}/{msg.version}",
    )


def on_model_archive(msg: ModelArchive, ctx: SensorContext) -> ModelArchived:
    """Archive a version (it loses its aliases)."""
    removed = Services.of_sensor(ctx).registry.archive_version(
        msg.name, msg.version, reason=msg.reason, actor=_actor(ctx.event)
    )
    return ModelArchived(name=msg.name, version=msg.version, removed_aliases=removed)


def on_finetune_completed(msg: FinetuneCompleted, ctx: SensorContext) -> ModelRegister:
    """Turn a finished fine-tuning job into a registration request with its lineage."""
    event = ctx.event
    base = msg.base_model
    base_ref = base.get("uri") or base.get("ref") or base.get("name")
    lineage: dict[str, Any] = {
        "finetune_event_id": event.id,
        "correlationid": event.correlationid,
        "base_model": base,
        "dataset": msg.dataset,
        "job_id": msg.job_id,
        "run_id": msg.run_id,
    }
    if msg.duration_s is not None:
        lineage["duration_s"] = msg.duration_s
    merged = getattr(msg, "merged_artifact_uri", None)
    if merged:
        lineage["merged_artifact_uri"] = merged
    return ModelRegister(
        name=msg.model_name,
        artifact_uri=msg.artifact_uri,
        kind=msg.kind,
        base_model=str(base_ref) if base_ref else None,
        dataset=msg.dataset.get("uri"),
        run_id=msg.run_id,
        job_id=msg.job_id,
        config=msg.config,
        metrics=msg.metrics,
        chat_template=msg.chat_template,
        lineage=lineage,
    )


#: (handler, message type, sensor name) of every built-in registry sensor.
SENSORS = (
    (on_model_register, ModelRegister, "herald.registry.register"),
    (on_model_promote, ModelPromote, "herald.registry.promote"),
    (on_model_archive, ModelArchive, "herald.registry.archive"),
    (on_finetune_completed, FinetuneCompleted, "herald.registry.finetune_completed"),
)


def install(registry: SensorRegistry) -> None:
    """Add the registry sensors to ``registry`` (the default one gets them on import)."""
    for fn, on, name in SENSORS:
        sensor(on=on, name=name, registry=registry)(fn)


install(default_registry)
