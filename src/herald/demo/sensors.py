"""Sensors and the traffic job of the closed-loop demo (a built-in plugin; cheap to import).

The demo adds only the glue a real deployment would configure once; every step is the platform's
own sensor or job, in ONE flow (the correlation id of ``demo.requested``):

    demo.requested ─demo.start─▶ finetune.requested ─▶ finetune job ─▶ finetune.completed
      ─▶ model.register ─▶ model.registered ─demo.evaluate─▶ evaluation.requested ─▶ job
      ─▶ evaluation.completed ─▶ evaluation.decided ─demo.promote─▶ model.promote ─▶ model.promoted
      ─demo.deploy─▶ deployment.requested (rollout: canary) ─▶ deployment.ready
      ─demo.traffic─▶ demo.traffic job (reference, then drifted prompts rated 👍, via the gateway)
      ─▶ demo.traffic.served + monitors.evaluate ─▶ drift.detected ─▶ dataset.register ─▶ …
      ─▶ finetune.requested ─▶ … ─▶ model.registered (v2) ─▶ evaluation ─▶ evaluation.decided
      ─demo.promote─▶ model.promote ─▶ model.promoted ─follow_alias─▶ deployment.traffic.changed
      (canary) ─▶ deployment.ready ─▶ deployment.watch ─▶ watch job  (and demo.traffic: canary
      traffic) ─▶ deployment.traffic.changed (rollout) ─▶ deployment.rolledout
      ─demo.finish─▶ demo.completed

The demo's glue: it evaluates versions of its own model on its suite, promotes a version to
``champion`` unless the promotion policy found it *worse* than the champion (a guarded
promotion: the policy's ``promote`` needs significance, which 3 LoRA steps never reach), creates
the deployment on the first promotion, and sends traffic. Each sensor acts only inside a demo
flow (a state file per flow under ``$HERALD_HOME/demo/``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from herald.artifacts.base import ArtifactStore
from herald.demo.messages import DemoCompleted, DemoRequested, DemoTrafficServed
from herald.evaluation.messages import EvaluationDecided, EvaluationRequested
from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.messages.base import Message
from herald.messages.lifecycle import ModelPromote, ModelPromoted, ModelRegistered
from herald.monitoring.messages import MonitorsEvaluate, RetrainSkipped
from herald.sensors.base import SensorContext, sensor
from herald.services import Services
from herald.serving.deployments.messages import (
    DeploymentReady,
    DeploymentRequested,
    DeploymentRolledBack,
    DeploymentRolledOut,
)

log = logging.getLogger("herald.demo")
TRAFFIC_JOB = "demo.traffic"
DEFAULT_ROLLOUT: dict[str, Any] = {
    "strategy": "canary",
    "canary_weight": 40,
    "min_requests": 3,
    "watch_s": 5,
    "max_watch_s": 300,
    "check_interval_s": 1,
    "max_error_rate": 0.2,
    "require_evaluation": True,
}
SMALL_FINETUNE: dict[str, Any] = {
    "micro_batch_size": 2,
    "sequence_len": 128,
    "lora_r": 4,
    "lora_alpha": 8,
    "logging_steps": 1,
}


def state_key(correlationid: str) -> str:
    return f"demo/{correlationid}.json"


# a demo's state lives in the artifact store: shared by every worker, so a demo's sensors and
# jobs find it on whichever worker they run
def save_state(store: ArtifactStore, correlationid: str, state: dict[str, Any]) -> None:
    store.put_bytes(state_key(correlationid), json.dumps(state).encode())


def load_state(store: ArtifactStore, correlationid: str) -> dict[str, Any] | None:
    """The demo request of this flow, or None outside a demo flow."""
    key = state_key(correlationid)
    if not store.exists(key):
        return None
    data: dict[str, Any] = json.loads(store.get_bytes(key))
    return data


def _finetune(state: dict[str, Any]) -> dict[str, Any]:
    steps = int(state["max_steps"])
    return {**SMALL_FINETUNE, "max_steps": steps, "save_steps": steps, **state["finetune"]}


@sensor(on=DemoRequested, name="herald.demo.start")
def on_demo_requested(msg: DemoRequested, ctx: SensorContext) -> Message:
    """Remember the demo's settings for its flow and fine-tune the first version — unless its
    traffic windows are smaller than the drift monitor needs, which it says at once."""
    from herald.training.job import FinetuneRequested

    services = Services.of_sensor(ctx)
    need = services.settings.monitoring.min_samples
    have = min(len(msg.reference_prompts), len(msg.drift_prompts))
    if have < need:
        return DemoCompleted(
            name=msg.name,
            ok=False,
            reason=f"{have} prompts per traffic window, but this server's monitoring.min_samples "
            f"is {need}: the drift monitor would give no verdict on so few requests. Send at "
            f"least {need} (herald demo --requests {need}) or start the server with "
            f"HERALD_MONITORING__MIN_SAMPLES={have}",
        )
    state = {**msg.payload(), "rollout": {**DEFAULT_ROLLOUT, **msg.rollout}}
    save_state(services.artifacts, ctx.event.correlationid, state)
    return FinetuneRequested(
        **{**_finetune(state), "base_model": msg.base_model, "dataset": msg.dataset,
           "model_name": msg.name}
    )  # fmt: skip


@sensor(on=ModelRegistered, name="herald.demo.evaluate")
def on_registered(msg: ModelRegistered, ctx: SensorContext) -> list[Message]:
    """Evaluate each new version of the demo model on the demo suite."""
    state = load_state(Services.of_sensor(ctx).artifacts, ctx.event.correlationid)
    if state is None or msg.name != state["name"] or not msg.created:
        return []
    return [EvaluationRequested(target=msg.uri, suite=state["suite"], limit=state["eval_limit"])]


@sensor(on=EvaluationDecided, name="herald.demo.promote")
def on_decided(msg: EvaluationDecided, ctx: SensorContext) -> list[Message]:
    """Guarded promotion: the new version becomes ``champion`` unless it is worse."""
    state = load_state(Services.of_sensor(ctx).artifacts, ctx.event.correlationid)
    if state is None or msg.name != state["name"]:
        return []
    if msg.decision == "worse":
        return [
            DemoCompleted(
                name=msg.name,
                ok=False,
                reason=f"version {msg.candidate_version} is worse than champion "
                f"v{msg.champion_version} on {msg.metric}: not promoted",
            )
        ]
    return [
        ModelPromote(
            name=msg.name,
            version=msg.candidate_version,
            alias="champion",
            reason=f"demo: {msg.decision} against "
            + (f"v{msg.champion_version}" if msg.champion_version else "no champion")
            + f" on {msg.suite} ({msg.metric})",
        )
    ]


@sensor(on=ModelPromoted, name="herald.demo.deploy")
def on_promoted(msg: ModelPromoted, ctx: SensorContext) -> list[Message]:
    """The first champion creates the demo deployment (later ones reach it through
    ``herald.deployments.follow_alias`` and its canary rollout)."""
    services = Services.of_sensor(ctx)
    state = load_state(services.artifacts, ctx.event.correlationid)
    if state is None or msg.name != state["name"] or msg.alias != "champion":
        return []
    if services.deployment_store.find(state["name"]) is not None:
        return []
    return [
        DeploymentRequested(
            name=state["name"],
            targets=[{"model": f"models:/{msg.name}@champion", "weight": 100}],
            rollout=state["rollout"],
            reason="demo: the first champion",
        )
    ]


@sensor(on=DeploymentReady, name="herald.demo.traffic")
def on_ready(msg: DeploymentReady, ctx: SensorContext) -> None:
    """Serve traffic: drift traffic on the first revision, canary traffic while one is watched."""
    state = load_state(Services.of_sensor(ctx).artifacts, ctx.event.correlationid)
    if state is None or msg.name != state["name"]:
        return
    live = [t for t in msg.targets if float(t.get("weight") or 0) > 0]
    if len(live) > 1:
        ctx.run_job(TRAFFIC_JOB, {"correlationid": ctx.event.correlationid, "mode": "canary"})
    elif msg.revision == 1:
        ctx.run_job(TRAFFIC_JOB, {"correlationid": ctx.event.correlationid, "mode": "drift"})


@sensor(on=DeploymentRolledOut, name="herald.demo.finish")
def on_rolled_out(msg: DeploymentRolledOut, ctx: SensorContext) -> list[Message]:
    """The retrained version serves 100 %: the demo is done."""
    state = load_state(Services.of_sensor(ctx).artifacts, ctx.event.correlationid)
    if state is None or msg.name != state["name"]:
        return []
    return [DemoCompleted(name=msg.name, ok=True, version=msg.version, reason=msg.reason)]


@sensor(on=DeploymentRolledBack, name="herald.demo.rolled_back")
def on_rolled_back(msg: DeploymentRolledBack, ctx: SensorContext) -> list[Message]:
    state = load_state(Services.of_sensor(ctx).artifacts, ctx.event.correlationid)
    if state is None or msg.name != state["name"]:
        return []
    return [DemoCompleted(name=msg.name, ok=False, reason=f"rolled back: {msg.reason}")]


@sensor(on=RetrainSkipped, name="herald.demo.retrain_skipped")
def on_retrain_skipped(msg: RetrainSkipped, ctx: SensorContext) -> list[Message]:
    state = load_state(Services.of_sensor(ctx).artifacts, ctx.event.correlationid)
    if state is None or msg.model != state["name"]:
        return []
    return [DemoCompleted(name=msg.model, ok=False, reason=f"retraining skipped: {msg.reason}")]


# the traffic job -----------------------------------------------------------------------------
def _chat(client: Any, model: str, prompt: str, max_tokens: int) -> str | None:
    from herald.errors import HeraldError

    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": 0}  # fmt: skip
    try:
        return str(client._request("POST", "/v1/chat/completions", json=body)["id"])
    except HeraldError as exc:
        log.warning("demo request to %s failed: %s", model, exc.message)
        return None


def _live_targets(client: Any, name: str) -> int:
    dep = client._request("GET", f"/v1/deployments/{name}")
    targets = dep.get("targets") or dep.get("deployment", {}).get("targets") or []
    return sum(1 for t in targets if float(t.get("weight") or 0) > 0)


@job(name=TRAFFIC_JOB, executor="inline", max_attempts=1, timeout_s=1800)
def demo_traffic(correlationid: str, mode: str, ctx: JobContext | None = None) -> list[Message]:
    """Send the demo's requests through the gateway: ``drift`` = a reference window, then a
    drifted window rated 👍, then ``monitors.evaluate`` with a drift rule over exactly those
    windows; ``canary`` = requests until the deployment has one live target again."""
    from herald.client import Client

    state = load_state(Services.of_job(ctx).artifacts, correlationid)
    if state is None:
        raise ValueError(f"no demo state for flow {correlationid} ({state_key(correlationid)} "
                         "in the artifact store)")  # fmt: skip
    name, max_tokens = state["name"], int(state["max_tokens"])

    def say(line: str) -> None:
        log.info(line)
        if ctx is not None:
            ctx.log(line)

    with Client(state["gateway_url"], timeout=300) as client:
        if mode == "canary":
            prompts = [*state["drift_prompts"], *state["reference_prompts"]]
            sent = errors = 0
            deadline = time.monotonic() + float(state["rollout"].get("max_watch_s", 300)) + 60
            while time.monotonic() < deadline and sent < 20 * len(prompts):
                if sent % 3 == 0 and _live_targets(client, name) <= 1:
                    break  # the watch decided
                if _chat(client, name, prompts[sent % len(prompts)], max_tokens) is None:
                    errors += 1
                sent += 1
            say(f"canary traffic: {sent} requests ({errors} failed)")
            return [DemoTrafficServed(name=name, mode=mode, requests=sent, errors=errors)]
        ref, live = state["reference_prompts"], state["drift_prompts"]
        t_ref0 = time.time()
        errors = sum(_chat(client, name, p, max_tokens) is None for p in ref)
        say(f"reference window: {len(ref)} requests")
        time.sleep(2.0)
        t_live0 = time.time()
        rated = 0
        for p in live:
            rid = _chat(client, name, p, max_tokens)
            if rid is None:
                errors += 1
                continue
            client._request("POST", "/v1/feedback", json={"response_id": rid, "thumbs": "up"})
            rated += 1
        t_live1 = time.time()
        say(f"drifted window: {len(live)} requests, {rated} rated 👍")
    rule = {
        "name": f"{name}-topic-drift",
        "metric": "prompt_embedding_drift",
        "model": name,
        "comparison": "<",
        "threshold": 0.05,  # the permutation test's alpha; small windows cannot reach 0.01
        "window": f"{t_live1 - t_live0 + 1.0:.3f}s",
        "reference_window": f"{t_live0 - t_ref0 + 4.5:.3f}s",
        "cooldown": "0s",
        "retrain": _finetune(state),
    }
    windows = {"reference_start": t_ref0, "drift_start": t_live0, "drift_end": t_live1}
    return [
        DemoTrafficServed(name=name, mode=mode, requests=len(ref) + len(live), errors=errors,
                          feedback=rated, windows=windows),
        MonitorsEvaluate(inline_rules=[rule], at=t_live1 + 0.5),
    ]  # fmt: skip
