"""Closed loop on an in-process Herald: monitors.evaluate → drift.detected → dataset.register
of accepted traffic → (dataset.registered) → finetune.requested; a drift flood retrains once;
approvals gate the data set."""

from __future__ import annotations

import json
import time
from typing import Any

from herald.messages.lifecycle import DatasetRegistered
from herald.monitoring import sensors as monitoring
from herald.monitoring.messages import MonitorsEvaluate

from .conftest import Env

RULES = """rules:
  - name: prompt-length
    metric: prompt_length_drift
    comparison: "<"
    threshold: 0.01
    window: 1h
    reference_window: 1h
    cooldown: 0s
"""


def seed_traffic(h: Any) -> None:
    """Through the Herald's own request-log sink (files embedded, herald_requests on PostgreSQL)."""
    now = time.time()
    rows: list[dict[str, Any]] = []
    for i in range(40):  # reference: short questions; live: long ones
        rows.append({"time": now - 5400 + i, "model": "m", "status": 200, "latency_s": 0.1,
                     "request_id": f"ref{i}", "input": f"user: q{i}?", "output": f"a{i}"})  # fmt: skip
        rows.append({"time": now - 600 + i, "model": "m", "status": 200, "latency_s": 0.1,
                     "request_id": f"live{i}", "input": "user: " + "long question " * 20 + str(i),
                     "output": f"answer {i}"})  # fmt: skip
    for r in rows:
        h.request_log.sink.write(r)
    assert h.request_log.sink.flush()


async def start(env: Env, **retrain: Any) -> Any:
    monitoring.install(env.sensors, cron=False)
    rules = env.tmp / "rules.yaml"
    rules.write_text(RULES)
    h = await env.start(
        monitoring={"rules_file": str(rules), "min_samples": 30,
                    "retrain": {"min_rows": 5, "finetune": {"max_steps": 2}, **retrain}},
    )  # fmt: skip
    seed_traffic(h)
    store = h.services.monitoring  # what the monitoring sensors read
    for i in range(10):
        store.add_feedback(f"live{i}", 1.0, thumbs="up")
    store.add_feedback("live11", 0.0, thumbs="down")
    return h


async def test_drift_to_finetune_requested(env: Env) -> None:
    h = await start(env)
    first = await h.emit(MonitorsEvaluate())
    [drift] = await env.wait_for("drift.detected")
    assert drift.causationid == first.id and drift.data["model"] == "m"
    assert drift.data["evidence"]["test"]["test"] == "ks"
    [register] = await env.wait_for("dataset.register")
    assert register.causationid == drift.id
    # written to the artifact store (the registering job may run on another host)
    source = register.data["source"]
    rows = h.artifacts.get_bytes(h.artifacts.key_of(source)).decode().splitlines()
    assert len(rows) == 10  # only accepted answers
    assert json.loads(rows[0])["messages"][-1] == {"role": "assistant", "content": "answer 0"}
    done = await h.emit(
        DatasetRegistered(name=register.data["name"], version=1, uri="datasets:/traffic-m/1",
                          fingerprint="f", format="chat", artifact_uri="file:///x", rows=10),
        correlationid=register.correlationid, causationid=register.id,
    )  # fmt: skip
    [ft] = await env.wait_for("finetune.requested")
    assert ft.causationid == done.id and ft.correlationid == first.correlationid
    assert ft.data["base_model"] == "models:/m" and ft.data["max_steps"] == 2
    assert ft.data["dataset"] == "datasets:/traffic-m/1"


async def test_drift_flood_retrains_once(env: Env) -> None:
    h = await start(env)
    for _ in range(4):
        await h.emit(MonitorsEvaluate())
    await env.wait_for("drift.detected", n=4)
    skipped = await env.wait_for("retrain.skipped", n=3)
    assert len(await env.wait_for("dataset.register", timeout=0.5)) == 1
    assert all("cooldown" in e.data["reason"] for e in skipped)


async def test_approval_gates_the_dataset(env: Env) -> None:
    h = await start(env, require_approval=True)
    await h.emit(MonitorsEvaluate())
    [req] = await env.wait_for("approval.requested")
    assert req.data["action_type"] == "dataset.register"
    assert await env.wait_for("dataset.register", timeout=0.3) == []
    env_ = h.envelope("approval.granted", {"approval_id": req.id, "action_type":
                      req.data["action_type"], "action": req.data["action"]},
                      correlationid=req.correlationid, causationid=req.id)  # fmt: skip
    await h.publish(env_)
    [register] = await env.wait_for("dataset.register")
    assert register.data["name"] == "traffic-m"


async def test_a_flood_of_20_drift_signals_retrains_once(env: Env) -> None:
    from herald.monitoring.messages import DriftDetected

    h = await start(env)
    for i in range(20):
        await h.emit(DriftDetected(rule="prompt-length", metric="prompt_length_drift", model="m",
                                   value=0.001 * i, comparison="<", threshold=0.01,
                                   window_s=3600.0))  # fmt: skip
    skipped = await env.wait_for("retrain.skipped", n=19)
    assert len(skipped) == 19
    assert all(e.data["reason"].startswith("cooldown: last retraining") for e in skipped)
    [register] = await env.wait_for("dataset.register", timeout=0.5)
    assert register.data["name"] == "traffic-m"
    drift_ids = {e.id for e in await env.wait_for("drift.detected", n=20)}
    assert {e.data["drift_event_id"] for e in skipped} | {register.causationid} == drift_ids


async def test_a_denied_approval_registers_nothing(env: Env) -> None:
    h = await start(env, require_approval=True)
    await h.emit(MonitorsEvaluate())
    [req] = await env.wait_for("approval.requested")
    denied = h.envelope("approval.denied", {"approval_id": req.id, "by": "ops", "comment": "no"},
                        correlationid=req.correlationid, causationid=req.id)  # fmt: skip
    await h.publish(denied)
    await env.wait_for("approval.denied")
    assert await env.wait_for("dataset.register", timeout=0.5) == []
    assert await env.wait_for("finetune.requested", timeout=0.1) == []
