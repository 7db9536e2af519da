"""Each Herald's sensors use that Herald's stores and settings (issue 15): the deployment,
monitoring, demo and RAG sensors reached them through process globals that the last Herald built
in the process had bound, so two Heralds in one process (tests, an embedding application)
wrote into each other's state."""

from __future__ import annotations

import asyncio
from pathlib import Path

from herald import Herald
from herald.bus import EventQuery
from herald.messages.lifecycle import ModelPromoted
from herald.serving.deployments.models import parse_deployment
from herald.serving.guardrails.messages import GuardrailTriggered
from herald.settings import Settings


def settings(tmp_path: Path, name: str, **deployments: object) -> Settings:
    return Settings(
        home=tmp_path / name,
        database_url=f"sqlite:///{tmp_path / name / 'h.db'}",
        serving={"bundled": False, "registry": False, "deployments": deployments},
    )


def target(model: str) -> dict[str, object]:
    return {"model": model, "weight": 100, "backend": "fake"}


async def handled(h: Herald, sensor: str, seq: int) -> None:
    assert h.runner is not None
    for _ in range(400):
        if {s["name"]: s["cursor"] for s in h.runner.status()}[sensor] >= seq:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{sensor} never handled event {seq}")


async def test_two_heralds_in_one_process_keep_their_own_monitoring_state(tmp_path: Path) -> None:
    first = Herald(settings(tmp_path, "first"))
    second = Herald(settings(tmp_path, "second"))  # built last: it used to win the globals
    await first.start(workers=False)
    try:
        hit = GuardrailTriggered(model="m", rule="pii", rule_type="pii", action="redact",
                                 direction="input", count=3, requests=10, window_start=0.0,
                                 window_end=50.0)  # fmt: skip
        env = await first.emit(hit)
        await handled(first, "monitoring.guardrails", env.seq or 0)
        assert first.services.monitoring.guardrail_counts(0.0, 100.0) == {"m": 3}
        assert second.services.monitoring.guardrail_counts(0.0, 100.0) == {}
    finally:
        await first.stop()
        await second.stop()


async def test_programmatic_deployment_settings_reach_the_follow_alias_sensor(
    tmp_path: Path,
) -> None:
    on = Herald(settings(tmp_path, "on"))
    h = Herald(settings(tmp_path, "off", follow_aliases=False))  # built last
    dep = parse_deployment({"name": "chat", "targets": [target("models:/m@champion")]})
    for herald in (h, on):  # a deployment following m@champion in each home
        herald.deployments.store.put(dep)
    await h.start(workers=False)
    await on.start(workers=False)
    try:
        promoted = ModelPromoted(name="m", version=2, alias="champion", uri="models:/m/2")
        for herald in (h, on):
            env = await herald.emit(promoted)
            await handled(herald, "herald.deployments.follow_alias", env.seq or 0)
        asked = await h.log.query(EventQuery(types=["deployment.requested"]))
        assert asked == []  # follow_aliases: false in this Herald's Settings
        [again] = await on.log.query(EventQuery(types=["deployment.requested"]))
        assert again.data["name"] == "chat"
    finally:
        await h.stop()
        await on.stop()
