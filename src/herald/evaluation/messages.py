"""Message types of the Omni-Evaluator.

- ``evaluation.requested``  (a user, the API, the CLI or a sensor) → the ``evaluation.run`` job
- ``evaluation.progressed`` (the job, while it runs)
- ``evaluation.completed``  aggregate scores with bootstrap CIs, thresholds, the model version,
  and a link to the per-sample records (``/v1/evaluations/{id}/samples``)
- ``evaluation.failed``     the evaluation could not run (bad suite, unreachable target)
- ``evaluation.decided``    the promotion policy compared a version with the champion
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from herald.messages.base import Message
from herald.security.secrets import NAME_PATTERN, refusal_message


class EvaluationRequested(Message, type="evaluation.requested"):
    """Evaluate a target on a suite."""

    target: str = Field(
        min_length=1,
        description="models:/name@alias|/N, a checkpoint folder, a served model name, "
        "deployment:NAME, or an OpenAI-compatible base URL (http(s)://…/v1)",
    )
    suite: str = Field(min_length=1, description="suite YAML path or shipped suite name")
    model: str | None = Field(None, description="model name at an endpoint target")
    evaluation_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="default: derived from the event id"
    )
    concurrency: int | None = Field(None, ge=1, le=256)
    limit: int | None = Field(None, ge=1, description="evaluate only the first N samples")
    api_key_secret: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="name of an operator-defined secret (security.secrets) sent as the "
        "endpoint's bearer key, only to a host the secret was defined for",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="free-form; 'decide_for' (an evaluation id) asks the promotion policy to "
        "compare that evaluation with this one when it completes",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_env_reference(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key_env" in data:
            raise ValueError(refusal_message("api_key_env", "data"))
        return data


class EvaluationProgressed(Message, type="evaluation.progressed"):
    """Items done so far."""

    evaluation_id: str
    suite: str
    target: str
    done: int
    total: int
    errors: int = 0


class EvaluationCompleted(Message, type="evaluation.completed"):
    """An evaluation finished: aggregates with confidence intervals and the per-sample link."""

    evaluation_id: str
    suite: str
    suite_fingerprint: str = ""
    target: str
    model_version: str | None = Field(None, description="models:/name/N when the target was one")
    metrics: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="engine.metric → {value, ci_low, ci_high, n, errors}",
    )
    primary_metric: str | None = None
    thresholds: dict[str, dict[str, Any]] = Field(default_factory=dict)
    passed: bool | None = None
    items: int = 0
    failed_items: int = 0
    samples_url: str = Field("", description="REST path of the per-sample records")
    step: int | None = Field(None, description="training step (evaluations during training)")
    run_id: str | None = None
    duration_s: float | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class EvaluationFailed(Message, type="evaluation.failed"):
    """An evaluation could not run."""

    evaluation_id: str
    suite: str
    target: str
    error: str
    code: str = "evaluation_failed"
    step: int | None = Field(None, description="training step (evaluations during training)")
    run_id: str | None = None


class EvaluationDecided(Message, type="evaluation.decided"):
    """The promotion policy compared a candidate version with the champion."""

    name: str
    candidate_version: int
    champion_version: int | None
    suite: str
    metric: str
    decision: Literal["promote", "keep", "no_baseline", "not_significant", "worse"]
    alias: str
    candidate_evaluation: str
    champion_evaluation: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)


EVALUATION_MESSAGES = (
    EvaluationRequested,
    EvaluationProgressed,
    EvaluationCompleted,
    EvaluationFailed,
    EvaluationDecided,
)
