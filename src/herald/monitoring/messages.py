"""Message types of monitoring: threshold crossings, feedback and approvals.

Every alert carries the rule that fired and its evidence (the measured value, the windows and
the statistics behind it), so a sensor, the dashboard or a human can act without re-querying.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from herald.messages.base import Message

Comparison = Literal[">", ">=", "<", "<="]


class _Alert(Message):
    """Fields shared by every threshold-crossing message."""

    rule: str = Field(description="name of the rule that fired")
    metric: str
    model: str = Field(description="served model name the metric was computed for ('*' = all)")
    value: float
    comparison: Comparison
    threshold: float
    window_s: float = Field(description="length of the live window in seconds")
    evidence: dict[str, Any] = Field(default_factory=dict)
    retrain: dict[str, Any] = Field(
        default_factory=dict, description="finetune.requested overrides the rule asks for"
    )


class DriftDetected(_Alert, type="drift.detected"):
    """Prompts of the live window differ from the reference window (data drift)."""


class QualityDegraded(_Alert, type="quality.degraded"):
    """User feedback or guardrail trigger rates crossed a threshold."""


class SloBreached(_Alert, type="slo.breached"):
    """An operational metric (latency, error rate, throughput) crossed its objective."""


class BudgetExceeded(_Alert, type="budget.exceeded"):
    """Spend (cost per day) crossed its budget."""


class FeedbackRecorded(Message, type="feedback.recorded"):
    """A user rated a served response (thumbs and/or a score in [0, 1])."""

    feedback_id: str
    response_id: str
    score: float = Field(ge=0.0, le=1.0)
    model: str | None = None


class ApprovalRequested(Message, type="approval.requested"):
    """A sensor asks a human to approve ``action`` (a message it will emit when granted)."""

    action_type: str = Field(description="message type emitted when granted")
    action: dict[str, Any] = Field(description="payload of that message")
    reason: str = ""
    requested_by: str = Field("", description="the sensor that asked")


class ApprovalGranted(Message, type="approval.granted"):
    """A human approved the request ``approval_id`` (the id of its approval.requested event)."""

    approval_id: str
    by: str = ""
    comment: str = ""
    action_type: str | None = Field(None, description="copied from the request")
    action: dict[str, Any] = Field(default_factory=dict, description="copied from the request")


class ApprovalDenied(Message, type="approval.denied"):
    """A human refused the request ``approval_id``."""

    approval_id: str
    by: str = ""
    comment: str = ""


class RetrainSkipped(Message, type="retrain.skipped"):
    """The retraining sensor did not retrain, and says why (cooldown, budget, no data)."""

    model: str
    reason: str
    drift_event_id: str | None = None


class MonitorsEvaluate(Message, type="monitors.evaluate"):
    """Evaluate the monitoring rules now (the schedule, ``monitoring.schedule``, does this every
    5 minutes by default)."""

    rules: list[str] = Field(default_factory=list, description="only these rules (default all)")
    inline_rules: list[dict[str, Any]] = Field(
        default_factory=list, description="evaluate these rules (YAML rule objects) instead"
    )
    at: float | None = Field(None, description="evaluate as of this epoch time (default: now)")


class MonitorsEvaluated(Message, type="monitors.evaluated"):
    """The monitoring rules were evaluated — on the ``monitoring.schedule`` or on a
    ``monitors.evaluate`` request — with one outcome per (rule, model); alerts that fired are
    emitted beside it."""

    trigger: Literal["schedule", "request"]
    rules: int = Field(description="rules evaluated")
    fired: int = Field(description="outcomes that emitted an alert")
    outcomes: list[dict[str, Any]] = Field(
        default_factory=list,
        description="{rule, model, metric, value, fired, status (fired | ok | no_data | "
        "cooldown | disabled), emits}; at most 200 (see 'truncated')",
    )
    truncated: int = Field(0, description="outcomes left out of 'outcomes'")


ALERTS: dict[str, type[_Alert]] = {
    "drift.detected": DriftDetected,
    "quality.degraded": QualityDegraded,
    "slo.breached": SloBreached,
    "budget.exceeded": BudgetExceeded,
}
