"""Threshold rules (YAML) and their evaluation over windows of request logs and feedback.

```yaml
rules:
  - name: prompt-drift
    metric: prompt_embedding_drift   # value: the MMD permutation p-value
    window: 1h                       # live window
    reference_window: 24h            # the window just before it
    comparison: "<"
    threshold: 0.01
    cooldown: 6h
    model: "*"                       # one rule per served model; or a model name
```

Metrics (per served model): ``latency_p50|p95|p99``, ``ttft_p95``, ``error_rate``,
``tokens_per_s``, ``requests``, ``cost_per_day``, ``feedback_score``, ``feedback_negative_rate``,
``guardrail_rate`` and the drift p-values ``prompt_embedding_drift``, ``prompt_length_drift``,
``prompt_language_drift``. A metric with too little data yields no value (never an alert).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from herald.errors import ConfigurationError
from herald.messages.base import Message
from herald.monitoring import drift
from herald.monitoring.messages import ALERTS
from herald.monitoring.store import MonitoringStore

Record = dict[str, Any]
Embed = Callable[[list[str]], list[list[float]]]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DRIFT_METRICS = ("prompt_embedding_drift", "prompt_length_drift", "prompt_language_drift")
QUALITY_METRICS = ("feedback_score", "feedback_negative_rate", "guardrail_rate")
BUDGET_METRICS = ("cost_per_day",)
OPS_METRICS = (
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "ttft_p95",
    "error_rate",
    "tokens_per_s",
    "requests",
)
METRICS = DRIFT_METRICS + QUALITY_METRICS + BUDGET_METRICS + OPS_METRICS


def parse_duration(v: str | float | int) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` → seconds."""
    if isinstance(v, int | float):
        return float(v)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(v))
    if not m:
        raise ValueError(f"invalid duration {v!r} (e.g. 30s, 15m, 1h, 7d)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def default_emits(metric: str) -> str:
    if metric in DRIFT_METRICS:
        return "drift.detected"
    if metric in QUALITY_METRICS:
        return "quality.degraded"
    if metric in BUDGET_METRICS:
        return "budget.exceeded"
    return "slo.breached"


class Rule(BaseModel):
    """One threshold rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    metric: Literal[METRICS]  # type: ignore[valid-type]
    window: float = 3600.0
    reference_window: float = 86400.0
    comparison: Literal[">", ">=", "<", "<="]
    threshold: float
    cooldown: float = 3600.0
    model: str = "*"
    emits: (
        Literal["drift.detected", "quality.degraded", "slo.breached", "budget.exceeded"] | None
    ) = None
    enabled: bool = True
    retrain: dict[str, Any] = Field(
        default_factory=dict, description="finetune.requested overrides for the retrain sensor"
    )

    @field_validator("window", "reference_window", "cooldown", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return parse_duration(v)

    @property
    def message_type(self) -> str:
        return self.emits or default_emits(self.metric)

    def crossed(self, value: float) -> bool:
        t = self.threshold
        return {
            ">": value > t,
            ">=": value >= t,
            "<": value < t,
            "<=": value <= t,
        }[self.comparison]


DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "prompt-drift", "metric": "prompt_embedding_drift", "comparison": "<",
     "threshold": 0.01, "window": "1h", "reference_window": "24h", "cooldown": "6h"},
    {"name": "prompt-length-drift", "metric": "prompt_length_drift", "comparison": "<",
     "threshold": 0.001, "window": "1h", "reference_window": "24h", "cooldown": "6h"},
    {"name": "feedback-low", "metric": "feedback_score", "comparison": "<", "threshold": 0.5,
     "window": "6h", "cooldown": "6h"},
    {"name": "latency-p95", "metric": "latency_p95", "comparison": ">", "threshold": 10.0,
     "window": "15m", "cooldown": "1h"},
    {"name": "error-rate", "metric": "error_rate", "comparison": ">", "threshold": 0.05,
     "window": "15m", "cooldown": "1h"},
]  # fmt: skip


def load_rules(source: Path | str | list[dict[str, Any]] | None) -> list[Rule]:
    """Rules from a YAML file (``rules: [...]``), a list of dicts, or the defaults."""
    where = "built-in rules"
    if source is None:
        raw: Any = DEFAULT_RULES
    elif isinstance(source, list):
        raw, where = source, "rules"
    else:
        path = Path(source).expanduser()
        where = str(path)
        if not path.is_file():
            raise ConfigurationError(f"monitoring rules file not found: {path}")
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None
        raw = doc.get("rules") if isinstance(doc, dict) else None
        if not isinstance(raw, list):
            raise ConfigurationError(f"{path}: expected a top-level 'rules:' list")
    rules: list[Rule] = []
    for i, item in enumerate(raw):
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as exc:
            errs = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ConfigurationError(f"{where}: rule #{i + 1}: {errs}") from None
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"{where}: duplicate rule names {', '.join(dupes)}")
    return rules


# metrics ------------------------------------------------------------------------------------
@dataclass
class Window:
    """Records of one model in [start, end)."""

    start: float
    end: float
    records: list[Record] = field(default_factory=list)


def _prompts(records: Iterable[Record]) -> list[str]:
    return [r["input"] for r in records if isinstance(r.get("input"), str) and r["input"]]


@dataclass
class MetricValue:
    value: float | None
    evidence: dict[str, Any]


@dataclass
class Context:
    """What metrics are computed from: request records, feedback and guardrail counts."""

    records: list[Record]
    store: MonitoringStore
    embed: Embed | None = None
    min_samples: int = 30
    max_samples: int = 500
    permutations: int = 300
    seed: int = 0
    _embed_cache: dict[str, list[float]] = field(default_factory=dict)

    def window(self, model: str, start: float, end: float) -> list[Record]:
        return [
            r
            for r in self.records
            if start <= float(r.get("time", 0)) < end and (model == "*" or r.get("model") == model)
        ]

    def embeddings(self, texts: list[str]) -> list[list[float]]:
        if self.embed is None:
            raise ConfigurationError("prompt_embedding_drift needs an embedder")
        todo = [t for t in dict.fromkeys(texts) if t not in self._embed_cache]
        if todo:
            for t, v in zip(todo, self.embed(todo), strict=True):
                self._embed_cache[t] = v
        return [self._embed_cache[t] for t in texts]


def compute(ctx: Context, metric: str, model: str, rule: Rule, now: float) -> MetricValue:
    """The value of ``metric`` for ``model`` over the rule's window ending at ``now``."""
    import numpy as np

    start = now - rule.window
    live = ctx.window(model, start, now)
    ev: dict[str, Any] = {"window": [start, now], "requests": len(live)}
    if metric in DRIFT_METRICS:
        ref = ctx.window(model, start - rule.reference_window, start)
        ev["reference_window"] = [start - rule.reference_window, start]
        ev["reference_requests"] = len(ref)
        rp, lp = _prompts(ref), _prompts(live)
        rp, lp = rp[-ctx.max_samples :], lp[-ctx.max_samples :]
        if metric == "prompt_length_drift":
            res = drift.ks_test(
                [len(p) for p in rp], [len(p) for p in lp], min_samples=ctx.min_samples
            )
        elif metric == "prompt_language_drift":
            res = drift.chi2_test(
                [drift.language_guess(p) for p in rp],
                [drift.language_guess(p) for p in lp],
                min_samples=ctx.min_samples,
            )
        else:
            short = min(len(rp), len(lp)) < ctx.min_samples
            res = drift.mmd_test(
                ctx.embeddings(rp) if not short else np.zeros((len(rp), 1)),
                ctx.embeddings(lp) if not short else np.zeros((len(lp), 1)),
                permutations=ctx.permutations,
                min_samples=ctx.min_samples,
                max_samples=ctx.max_samples,
                seed=ctx.seed,
            )
        ev["test"] = res.as_dict()
        ev["sample_prompts"] = lp[-3:]
        return MetricValue(res.p_value if res.enough_data else None, ev)
    if metric in ("feedback_score", "feedback_negative_rate"):
        ids = {r.get("request_id") for r in live} if model != "*" else None
        fb = [
            f
            for f in ctx.store.feedback(start, now)
            if ids is None or f["response_id"] in ids or f.get("model") == model
        ]
        ev["feedback"] = len(fb)
        if len(fb) < max(3, ctx.min_samples // 3):
            ev["reason"] = "too little feedback"
            return MetricValue(None, ev)
        scores = [float(f["score"]) for f in fb]
        if metric == "feedback_score":
            return MetricValue(float(np.mean(scores)), ev)
        return MetricValue(sum(s < 0.5 for s in scores) / len(scores), ev)
    if metric == "guardrail_rate":
        counts = ctx.store.guardrail_counts(start, now)
        hits = sum(counts.values()) if model == "*" else counts.get(model, 0)
        ev["triggers"] = hits
        if len(live) < ctx.min_samples:
            return MetricValue(None, {**ev, "reason": "too little traffic"})
        return MetricValue(hits / len(live), ev)
    if metric == "requests":
        return MetricValue(float(len(live)), ev)
    if metric == "cost_per_day":
        cost = sum(float(r.get("cost_usd") or 0.0) for r in live)
        ev["cost_usd"] = cost
        return MetricValue(cost * 86400.0 / rule.window, ev)
    if len(live) < ctx.min_samples:
        return MetricValue(None, {**ev, "reason": "too little traffic"})
    if metric == "error_rate":
        errors = sum(int(r.get("status", 200)) >= 500 for r in live)
        ev["errors"] = errors
        return MetricValue(errors / len(live), ev)
    ok = [r for r in live if int(r.get("status", 200)) < 400]
    if not ok:
        return MetricValue(None, {**ev, "reason": "no successful requests"})
    if metric.startswith("latency_p"):
        q = float(metric.removeprefix("latency_p"))
        return MetricValue(float(np.percentile([float(r["latency_s"]) for r in ok], q)), ev)
    if metric == "ttft_p95":
        t = [float(r["ttft_s"]) for r in ok if r.get("ttft_s") is not None]
        return MetricValue(float(np.percentile(t, 95)) if t else None, ev)
    # tokens_per_s
    tokens = sum(int(r.get("completion_tokens") or 0) for r in ok)
    seconds = sum(float(r.get("latency_s") or 0.0) for r in ok)
    return MetricValue(tokens / seconds if seconds > 0 else None, ev)


@dataclass
class Outcome:
    """One (rule, model) evaluation."""

    rule: str
    model: str
    metric: str
    value: float | None
    fired: bool
    status: str  # fired | ok | no_data | cooldown | disabled
    message: Message | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "model": self.model,
            "metric": self.metric,
            "value": self.value,
            "fired": self.fired,
            "status": self.status,
            "emits": self.message.message_type if self.message is not None else None,
        }


def evaluate(rules: list[Rule], ctx: Context, now: float | None = None) -> list[Outcome]:
    """Evaluate every rule for every model it covers; crossing rules out of cooldown produce
    their alert message (and start their cooldown)."""
    now = time.time() if now is None else now
    served = sorted({str(r.get("model")) for r in ctx.records if r.get("model")})
    out: list[Outcome] = []
    for rule in rules:
        if not rule.enabled:
            out.append(Outcome(rule.name, rule.model, rule.metric, None, False, "disabled"))
            continue
        for model in served if rule.model == "*" else [rule.model]:
            mv = compute(ctx, rule.metric, model, rule, now)
            if mv.value is None:
                out.append(Outcome(rule.name, model, rule.metric, None, False, "no_data"))
                continue
            if not rule.crossed(mv.value):
                out.append(Outcome(rule.name, model, rule.metric, mv.value, False, "ok"))
                continue
            last = ctx.store.last_fired(rule.name, model)
            if last is not None and now - last < rule.cooldown:
                out.append(Outcome(rule.name, model, rule.metric, mv.value, False, "cooldown"))
                continue
            ctx.store.set_fired(rule.name, model, now)
            msg = ALERTS[rule.message_type](
                rule=rule.name,
                metric=rule.metric,
                model=model,
                value=mv.value,
                comparison=rule.comparison,
                threshold=rule.threshold,
                window_s=rule.window,
                evidence=mv.evidence,
                retrain=rule.retrain,
            )
            out.append(Outcome(rule.name, model, rule.metric, mv.value, True, "fired", msg))
    return out
