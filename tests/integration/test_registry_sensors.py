"""Registry sensors on a running Herald: finetune.completed → model.register → model.registered,
promote/archive by message, idempotent redelivery and dead letters for invalid requests."""

from __future__ import annotations

from pathlib import Path

from herald.messages.lifecycle import FinetuneCompleted, ModelArchive, ModelPromote, ModelRegister
from herald.registry import sensors as registry_sensors

from .conftest import Env


def finetune_completed(home: Path) -> FinetuneCompleted:
    """A fine-tune whose adapter lies in the home's artifact store (the file policy's root)."""
    return FinetuneCompleted(
        job_id="job1",
        run_id="run1",
        model_name="demo",
        base_model={"ref": "smollm2", "uri": "HuggingFaceTB/SmolLM2-135M-Instruct"},
        dataset={"name": "chat", "version": 1, "uri": "datasets:/chat/1", "fingerprint": "f"},
        config={"lora_r": 8},
        artifact_uri=(home / "artifacts" / "models" / "demo" / "run1").as_uri(),
        kind="lora",
        chat_template="{{ messages }}",
        metrics={"train_loss": 1.25},
        duration_s=12.5,
    )


async def test_finetune_to_registered_with_lineage(env: Env) -> None:
    registry_sensors.install(env.sensors)
    h = await env.start()
    done = await h.emit(finetune_completed(env.tmp / "home"), subject="models/demo")
    [registered] = await env.wait_for("model.registered")
    [request] = await env.wait_for("model.register")
    assert request.causationid == done.id
    assert registered.causationid == request.id
    assert registered.correlationid == done.correlationid
    assert registered.data["uri"] == "models:/demo/1"
    mv = h.registry.resolve("models:/demo")
    assert mv.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert mv.dataset == "datasets:/chat/1"
    assert (mv.run_id, mv.job_id, mv.kind) == ("run1", "job1", "lora")
    assert mv.metrics == {"train_loss": 1.25}
    assert mv.chat_template == "{{ messages }}"
    assert mv.lineage["finetune_event_id"] == done.id
    assert mv.lineage["register_event_id"] == request.id
    assert mv.lineage["correlationid"] == done.correlationid
    flow = await h.flow(done.correlationid)
    assert {n["type"] for n in flow["nodes"]} >= {
        "finetune.completed",
        "model.register",
        "model.registered",
    }


async def test_register_with_aliases_promote_and_archive(env: Env) -> None:
    registry_sensors.install(env.sensors)
    h = await env.start()
    await h.emit(
        ModelRegister(
            name="demo", artifact_uri=(env.tmp / "home" / "a" / "1").as_uri(), aliases=["champion"]
        )
    )
    await env.wait_for("model.registered")
    [promoted] = await env.wait_for("model.promoted")
    assert promoted.data["alias"] == "champion" and promoted.data["previous_version"] is None
    await h.emit(ModelRegister(name="demo", artifact_uri=(env.tmp / "home" / "a" / "2").as_uri()))
    await env.wait_for("model.registered", 2)
    await h.emit(ModelPromote(name="demo", version=2, alias="champion", reason="better"))
    got = await env.wait_for("model.promoted", 2)
    assert got[-1].data == {
        "name": "demo",
        "version": 2,
        "alias": "champion",
        "previous_version": 1,
        "uri": "models:/demo/2",
    }
    assert h.registry.resolve("demo@champion").version == 2
    await h.emit(ModelArchive(name="demo", version=2, reason="regression"))
    [archived] = await env.wait_for("model.archived")
    assert archived.data["removed_aliases"] == ["champion"]
    assert h.registry.get_version("demo", 2).status == "archived"
    history = h.registry.alias_history("demo", "champion")
    assert [(x["action"], x["reason"]) for x in history] == [
        ("set", "requested at registration"),
        ("set", "better"),
        ("archive", "regression"),
    ]


async def test_invalid_promote_is_dead_lettered(env: Env) -> None:
    registry_sensors.install(env.sensors)
    h = await env.start()
    await h.emit(ModelPromote(name="ghost", version=1))
    [dl] = await env.wait_for("sensor.deadlettered")
    assert dl.data["sensor"] == "herald.registry.promote"
    assert "no model 'ghost'" in dl.data["error"]
    assert await env.wait_for("model.promoted", timeout=0.2) == []


async def test_redelivery_does_not_duplicate(env: Env) -> None:
    """Calling the handler twice for one event (what a crash-redelivery does) is harmless."""
    registry_sensors.install(env.sensors)
    h = await env.start()
    from herald.sensors.base import SensorContext

    event = h.envelope("model.register", {"name": "demo", "artifact_uri": "x", "aliases": ["a"]})
    msg = ModelRegister.model_validate(event.data)
    ctx = SensorContext(event=event, sensor="t", services=h.services)
    first = registry_sensors.on_model_register(msg, ctx)
    again = registry_sensors.on_model_register(msg, ctx)
    assert [m.model_dump() for m in first][1:] == [m.model_dump() for m in again][1:]
    assert again[0].created is False
    assert [v.version for v in h.registry.list_versions("demo")] == [1]
    assert len(h.registry.alias_history("demo")) == 1
