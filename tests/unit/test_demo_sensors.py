"""The demo plugin's glue sensors act only inside demo flows and do what the loop needs:
the first fine-tune, evaluation of the demo model, guarded promotion, the first deployment with
the canary policy, and the traffic job per deployment revision."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herald.demo import sensors as demo
from herald.demo.messages import DemoCompleted, DemoRequested
from herald.messages.envelope import Envelope
from herald.sensors.base import SensorContext
from herald.services import Services
from herald.settings import Settings


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = Services(Settings(home=tmp_path, database_url="memory://", monitoring={"min_samples": 2}))
    yield s
    s.close()


@pytest.fixture
def ctx(services: Services) -> Callable[..., SensorContext]:
    """A hand-made context of a Herald with these services (what the sensor runner passes)."""

    def make(cid: str = "flow-1") -> SensorContext:
        env = Envelope(type="x.y", source="test", data={}, correlationid=cid)
        return SensorContext(event=env, sensor="test", services=services)

    return make


def request() -> DemoRequested:
    return DemoRequested(name="demo", dataset="/d.jsonl", suite="/s.yaml",
                         reference_prompts=["a", "b"], drift_prompts=["c", "d"],
                         gateway_url="http://127.0.0.1:1", max_steps=2,
                         rollout={"canary_weight": 25})  # fmt: skip


def test_the_demo_starts_with_a_small_finetune_and_remembers_its_flow(
    services: Services, ctx: Callable[..., SensorContext]
) -> None:
    c = ctx()
    ft = demo.on_demo_requested(request(), c)
    assert ft.message_type == "finetune.requested"
    p = ft.payload()
    assert (p["model_name"], p["max_steps"], p["save_steps"], p["lora_r"]) == ("demo", 2, 2, 4)
    state = demo.load_state(services.artifacts, "flow-1")
    assert state is not None and state["rollout"]["canary_weight"] == 25
    assert state["rollout"]["strategy"] == "canary"  # the demo's defaults under the override
    assert demo.load_state(services.artifacts, "another-flow") is None


def test_windows_smaller_than_min_samples_stop_the_demo_at_once(
    services: Services, ctx: Callable[..., SensorContext]
) -> None:
    short = request().model_copy(update={"drift_prompts": ["c"]})
    done = demo.on_demo_requested(short, ctx())
    assert isinstance(done, DemoCompleted) and not done.ok
    assert "1 prompts per traffic window" in done.reason and "min_samples is 2" in done.reason
    assert "--requests 2" in done.reason
    assert (
        demo.load_state(services.artifacts, "flow-1") is None
    )  # nothing started, nothing remembered


def test_glue_acts_only_inside_demo_flows(
    services: Services, ctx: Callable[..., SensorContext]
) -> None:
    from herald.evaluation.messages import EvaluationDecided
    from herald.messages.lifecycle import ModelRegistered

    demo.on_demo_requested(request(), ctx())
    reg = ModelRegistered(name="demo", version=1, uri="models:/demo/1", artifact_uri="file:///x",
                          kind="lora")  # fmt: skip
    assert demo.on_registered(reg, ctx("elsewhere")) == []
    [ev] = demo.on_registered(reg, ctx())
    assert ev.payload()["target"] == "models:/demo/1" and ev.payload()["suite"] == "/s.yaml"
    other = reg.model_copy(update={"name": "other"})
    assert demo.on_registered(other, ctx()) == []

    def decided(decision: str) -> EvaluationDecided:
        return EvaluationDecided(name="demo", candidate_version=2, champion_version=1,
                                 suite="tiny", metric="reference.contains", decision=decision,
                                 alias="challenger", candidate_evaluation="e2")  # fmt: skip

    for ok in ("no_baseline", "not_significant", "promote"):
        [promote] = demo.on_decided(decided(ok), ctx())
        assert promote.payload() | {"reason": ""} == {
            "name": "demo", "version": 2, "alias": "champion", "reason": ""}  # fmt: skip
    [stop] = demo.on_decided(decided("worse"), ctx())
    assert isinstance(stop, DemoCompleted) and not stop.ok and "worse" in stop.reason
    assert demo.on_decided(decided("promote"), ctx("elsewhere")) == []


def test_traffic_job_per_deployment_revision(
    services: Services, ctx: Callable[..., SensorContext]
) -> None:
    from herald.serving.deployments.messages import DeploymentReady

    demo.on_demo_requested(request(), ctx())

    def ready(revision: int, weights: list[float]) -> list[tuple[str, dict[str, Any]]]:
        c = ctx()
        targets = [{"model": f"models:/demo/{i + 1}", "weight": w} for i, w in enumerate(weights)]
        demo.on_ready(DeploymentReady(name="demo", revision=revision, targets=targets,
                                      replicas=len(weights)), c)  # fmt: skip
        return [(j.name, j.params) for j in c.jobs]

    assert ready(1, [100]) == [("demo.traffic", {"correlationid": "flow-1", "mode": "drift"})]
    assert ready(2, [75, 25]) == [("demo.traffic", {"correlationid": "flow-1", "mode": "canary"})]
    assert ready(3, [100]) == []  # after the rollout: nothing more to send
