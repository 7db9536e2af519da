"""Built-in monitoring sensors (a built-in plugin; each can be disabled in settings):

- ``monitoring.schedule`` (cron, setting ``monitoring.schedule``, every 5 min by default) and
  ``monitors.evaluate`` → evaluate the rules → ``monitors.evaluated`` (every outcome, so a run
  that fired nothing is on record too) + ``drift.detected`` / ``quality.degraded`` /
  ``slo.breached`` / ``budget.exceeded``
- ``guardrail.triggered`` → counted for the ``guardrail_rate`` metric
- ``drift.detected`` → recent redacted traffic with accepted answers written as a chat JSONL →
  ``dataset.register`` (or ``approval.requested`` first), within a cooldown and a daily budget;
  otherwise ``retrain.skipped`` with the reason
- ``approval.granted`` → the approved message
- ``dataset.registered`` of a retraining data set → ``finetune.requested``; the lifecycle sensors
  take it from there (register → evaluate → promote → deploy).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from herald.messages.base import Message
from herald.messages.catalog import default_catalog
from herald.messages.lifecycle import DatasetRegister, DatasetRegistered
from herald.monitoring.messages import (
    ApprovalGranted,
    ApprovalRequested,
    DriftDetected,
    MonitorsEvaluate,
    MonitorsEvaluated,
    RetrainSkipped,
)
from herald.monitoring.rules import Context, Outcome, evaluate, load_rules
from herald.security.egress import EgressPolicy
from herald.sensors.base import SensorContext, SensorRegistry, default_registry, sensor
from herald.sensors.cron import schedule
from herald.services import Services
from herald.serving.guardrails.messages import GuardrailTriggered
from herald.settings import Settings

if TYPE_CHECKING:
    from herald.serving.requestlog import RequestLogReader


def request_log_folder(settings: Settings) -> Path:
    return settings.home / "serving" / "requests"


def read_records(
    log: RequestLogReader, since: float | None = None, *, model: str | None = None
) -> list[dict[str, Any]]:
    """Logged requests (oldest first) with ``time >= since`` (all when None), of ``model`` when
    given, from ``log`` (``services.request_log``: the files under :func:`request_log_folder`
    embedded, the shared ``herald_requests`` table on PostgreSQL)."""
    return list(log.read(since=since, model=model))


def _lookback(rules: list[Any]) -> float:
    """Seconds of request log the rules can look at (window plus reference window)."""
    return max((float(r.window) + float(r.reference_window) for r in rules), default=0.0)


def evaluate_now(
    services: Services,
    *,
    only: list[str] | None = None,
    inline: list[dict[str, Any]] | None = None,
    now: float | None = None,
) -> list[Outcome]:
    """Evaluate the configured (or ``inline``) rules once over the request log and monitoring
    state of ``services``; updates cooldowns; returns every outcome."""
    m = services.settings.monitoring
    rules = load_rules(inline if inline else m.rules_file)
    if only:
        rules = [r for r in rules if r.name in only]

    def embed(texts: list[str]) -> list[list[float]]:
        from herald.rag.embeddings.base import open_embedder

        # the operator's embedder, under the operator's egress policy (allowed_hosts)
        egress = EgressPolicy.of(services.settings)
        return open_embedder(m.embedder, services.settings.rag, egress=egress).embed(texts)

    at = time.time() if now is None else now
    ctx = Context(
        records=read_records(services.request_log, since=at - _lookback(rules)),
        store=services.monitoring,
        embed=embed,
        min_samples=m.min_samples,
        max_samples=m.max_samples,
        permutations=m.permutations,
        seed=m.seed,
    )
    return evaluate(rules, ctx, now)


MAX_OUTCOMES = 200  # per monitors.evaluated (a message stays far below 64 KiB)


def _report(outcomes: list[Outcome], trigger: Literal["schedule", "request"]) -> list[Message]:
    """``monitors.evaluated`` with every outcome, then the alerts that fired."""
    alerts = [o.message for o in outcomes if o.message is not None]
    summary = MonitorsEvaluated(
        trigger=trigger,
        rules=len({o.rule for o in outcomes}),
        fired=len(alerts),
        outcomes=[o.as_dict() for o in outcomes[:MAX_OUTCOMES]],
        truncated=max(len(outcomes) - MAX_OUTCOMES, 0),
    )
    return [summary, *alerts]


def on_schedule(ctx: SensorContext) -> list[Message]:
    """Evaluate the monitoring rules on ``monitoring.schedule`` (every 5 minutes by default;
    off with monitoring.enabled=false)."""
    services = Services.of_sensor(ctx)
    if not services.settings.monitoring.enabled:
        return []
    return _report(evaluate_now(services), "schedule")


def on_evaluate(msg: MonitorsEvaluate, ctx: SensorContext) -> list[Message]:
    """Evaluate the monitoring rules now."""
    outcomes = evaluate_now(
        Services.of_sensor(ctx),
        only=msg.rules or None,
        inline=msg.inline_rules or None,
        now=msg.at,
    )
    return _report(outcomes, "request")


def on_guardrail(msg: GuardrailTriggered, ctx: SensorContext) -> None:
    """Count guardrail hits for the guardrail_rate metric."""
    store = Services.of_sensor(ctx).monitoring
    store.add_guardrail(msg.model, msg.count, msg.requests, msg.window_end)


_ROLE = re.compile(r"^(system|user|assistant|tool): ", re.MULTILINE)


def parse_input(text: str) -> list[dict[str, str]]:
    """The request log's ``role: content`` lines back into chat messages."""
    parts = _ROLE.split(text)
    if len(parts) < 3:
        return [{"role": "user", "content": text.strip()}]
    return [
        {"role": parts[i], "content": parts[i + 1].rstrip("\n")} for i in range(1, len(parts), 2)
    ]


def accepted_rows(
    records: list[dict[str, Any]], scores: dict[str, float], model: str, settings: Settings
) -> list[dict[str, Any]]:
    """Chat rows of ``model``'s successful, logged answers that users accepted."""
    r = settings.monitoring.retrain
    rows: list[dict[str, Any]] = []
    for rec in records:
        if rec.get("model") != model or int(rec.get("status", 0)) != 200:
            continue
        inp, outp = rec.get("input"), rec.get("output")
        if not isinstance(inp, str) or not isinstance(outp, str) or not outp.strip():
            continue
        score = scores.get(str(rec.get("request_id")))
        if (score is None and r.require_feedback) or (score is not None and score < r.min_score):
            continue
        rows.append({"messages": [*parse_input(inp), {"role": "assistant", "content": outp}]})
    return rows[-r.max_rows :]


def _retrain_refusal(
    runs: list[float], now: float, cooldown_s: float, max_per_day: int
) -> str | None:
    if runs and now - runs[-1] < cooldown_s:
        return f"cooldown: last retraining {now - runs[-1]:.0f}s ago (cooldown {cooldown_s:.0f}s)"
    if len(runs) >= max_per_day:
        return f"budget: {len(runs)} retrainings in 24 h (max_runs_per_day {max_per_day})"
    return None


def on_drift(msg: DriftDetected, ctx: SensorContext) -> Message | None:
    """Drift → a data set of recent accepted traffic → dataset.register (cooldown, budget,
    optional approval)."""
    services = Services.of_sensor(ctx)
    s = services.settings
    r = s.monitoring.retrain
    if not r.enabled:
        return None
    store = services.monitoring
    now = ctx.event.time.timestamp()
    model = msg.model
    runs = [t for t in store.retrain_runs_since(model, now - 86400.0) if t < now]
    reason = _retrain_refusal(runs, now, r.cooldown_s, r.max_runs_per_day)
    if reason is not None:
        return RetrainSkipped(model=model, reason=reason, drift_event_id=ctx.event.id)
    records = read_records(services.request_log, model=model)
    rows = accepted_rows(records, store.scores_by_response(), model, s)
    if len(rows) < r.min_rows:
        return RetrainSkipped(
            model=model,
            reason=f"only {len(rows)} accepted answers in the request log (min_rows {r.min_rows})",
            drift_event_id=ctx.event.id,
        )
    # check again and record the run in one transaction: workers handling drift of the same
    # model at once (several rules, several worker processes) start one retraining, not two
    reason = store.claim_retrain_run(
        ctx.event.id, model, now, cooldown_s=r.cooldown_s, max_per_day=r.max_runs_per_day
    )
    if reason is not None:
        return RetrainSkipped(model=model, reason=reason, drift_event_id=ctx.event.id)
    name = f"{r.dataset_prefix}{model}"[:128]
    # into the artifact store, not this worker's home: the dataset.register job may run on
    # another host (it reads store URIs through the store)
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    source = services.artifacts.put_bytes(
        f"monitoring/datasets/{name}-{ctx.event.id}.jsonl", data
    ).uri
    store.save_plan(
        name,
        {
            "base_model": r.base_model or f"models:/{model}",
            "model_name": r.model_name or model,
            "finetune": {**r.finetune, **msg.retrain},
            "drift_event_id": ctx.event.id,
        },
    )
    register = DatasetRegister(
        name=name,
        source=source,
        format="chat",
        description=f"accepted traffic of {model} after {msg.rule} ({msg.metric}={msg.value:.3g})",
        tags={"herald.monitoring.drift_event": ctx.event.id, "model": model},
    )
    if r.require_approval:
        return ApprovalRequested(
            action_type=register.message_type,
            action=register.payload(),
            reason=f"retrain {model}: {msg.rule} fired ({msg.metric}={msg.value:.3g})",
            requested_by="monitoring.retrain",
        )
    return register


def on_approval_granted(msg: ApprovalGranted, ctx: SensorContext) -> Message | None:
    """Emit the approved message."""
    if not msg.action_type:
        return None
    return default_catalog.validate(msg.action_type, msg.action)


def on_dataset_registered(msg: DatasetRegistered, ctx: SensorContext) -> Message | None:
    """A retraining data set is registered → finetune.requested with the configured settings."""
    services = Services.of_sensor(ctx)
    if not msg.name.startswith(services.settings.monitoring.retrain.dataset_prefix):
        return None
    plan = services.monitoring.plan(msg.name)
    if plan is None:
        return None
    from herald.training.job import FinetuneRequested

    return FinetuneRequested(
        **{
            **plan["finetune"],
            "base_model": plan["base_model"],
            "dataset": msg.uri,
            "model_name": plan["model_name"],
        }
    )


SENSORS = (
    (on_evaluate, MonitorsEvaluate, "monitoring.evaluate"),
    (on_guardrail, GuardrailTriggered, "monitoring.guardrails"),
    (on_drift, DriftDetected, "monitoring.retrain"),
    (on_approval_granted, ApprovalGranted, "monitoring.approval_granted"),
    (on_dataset_registered, DatasetRegistered, "monitoring.finetune"),
)


SCHEDULE_SENSOR = "monitoring.schedule"


def install(
    registry: SensorRegistry, *, cron: bool = True, settings: Settings | None = None
) -> None:
    """Add the monitoring sensors to ``registry`` (the default one gets them on import); the
    schedule is ``settings.monitoring.schedule`` (default: every 5 minutes)."""
    for fn, on, name in SENSORS:
        sensor(on=on, name=name, registry=registry)(fn)
    if cron:
        install_schedule(registry, settings)


def install_schedule(registry: SensorRegistry, settings: Settings | None = None) -> None:
    """(Re)define the ``monitoring.schedule`` cron sensor with the schedule of ``settings``
    (a process's Herald calls this with its settings; a bad expression is a startup error)."""
    from herald.settings import MonitoringSettings

    m = settings.monitoring if settings is not None else MonitoringSettings()
    registry.remove(SCHEDULE_SENSOR)
    schedule(m.schedule, name=SCHEDULE_SENSOR, timezone=m.timezone, registry=registry)(on_schedule)


install(default_registry)
