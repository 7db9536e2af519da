"""Threshold rules: YAML validation, metric values, crossings, cooldowns and no-data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from herald.errors import ConfigurationError
from herald.monitoring.messages import SloBreached
from herald.monitoring.rules import Context, evaluate, load_rules, parse_duration
from herald.monitoring.store import MonitoringStore

NOW = 1_000_000.0


def rec(t: float, latency: float, model: str = "m", status: int = 200, **kw: Any) -> dict[str, Any]:
    return {"time": t, "model": model, "status": status, "latency_s": latency,
            "completion_tokens": 10, "request_id": f"r{t}", **kw}  # fmt: skip


def test_durations_and_validation(tmp_path: Path) -> None:
    assert parse_duration("15m") == 900 and parse_duration("2h") == 7200 and parse_duration(5) == 5
    bad = tmp_path / "r.yaml"
    bad.write_text("rules:\n  - {name: x, metric: nope, comparison: '>', threshold: 1}\n")
    with pytest.raises(ConfigurationError, match="rule #1: metric"):
        load_rules(bad)
    bad.write_text("rules: {}\n")
    with pytest.raises(ConfigurationError, match="top-level 'rules:' list"):
        load_rules(bad)
    with pytest.raises(ConfigurationError, match="not found"):
        load_rules(tmp_path / "missing.yaml")
    assert {r.name for r in load_rules(None)} >= {"prompt-drift", "latency-p95"}


def test_crossing_fires_once_per_cooldown(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "s.db")
    rules = load_rules([{"name": "lat", "metric": "latency_p95", "comparison": ">",
                         "threshold": 1.0, "window": "10m", "cooldown": "1h"}])  # fmt: skip
    records = [rec(NOW - i, 2.0) for i in range(1, 40)]
    ctx = Context(records=records, store=store, min_samples=30)
    [first] = evaluate(rules, ctx, NOW)
    assert first.fired and isinstance(first.message, SloBreached)
    assert first.message.value == pytest.approx(2.0)
    assert first.message.evidence["requests"] == 39
    [again] = evaluate(rules, ctx, NOW + 60)
    assert again.status == "cooldown" and again.message is None
    [later] = evaluate(rules, Context(records=[rec(NOW + 3700 - i, 2.0) for i in range(1, 40)],
                                      store=store, min_samples=30), NOW + 3700)  # fmt: skip
    assert later.fired


def test_too_little_traffic_is_no_data(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "s.db")
    rules = load_rules([{"name": "err", "metric": "error_rate", "comparison": ">",
                         "threshold": 0.1}])  # fmt: skip
    ctx = Context(records=[rec(NOW - 1, 1.0, status=500)] * 3, store=store, min_samples=30)
    [o] = evaluate(rules, ctx, NOW)
    assert o.status == "no_data" and not o.fired


def test_feedback_and_cost(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "s.db")
    records = [rec(NOW - i, 0.5, cost_usd=0.01) for i in range(1, 41)]
    for r in records[:20]:
        store.add_feedback(r["request_id"], 0.0, thumbs="down", at=NOW - 5)
    rules = load_rules([
        {"name": "fb", "metric": "feedback_score", "comparison": "<", "threshold": 0.5,
         "window": "1h"},
        {"name": "cost", "metric": "cost_per_day", "comparison": ">", "threshold": 5.0,
         "window": "1h"},
    ])  # fmt: skip
    fb, cost = evaluate(rules, Context(records=records, store=store, min_samples=30), NOW)
    assert fb.fired and fb.message is not None and fb.message.message_type == "quality.degraded"
    assert cost.value == pytest.approx(0.40 * 24)
    assert cost.message is not None and cost.message.message_type == "budget.exceeded"


def test_prompt_drift_with_an_embedder(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path / "s.db")
    ref = [rec(NOW - 7200 + i, 1.0, input=f"user: what is {i} plus {i}?") for i in range(40)]
    live = [rec(NOW - 100 + i, 1.0, input=f"user: Какая столица страны {i}?") for i in range(40)]

    def embed(texts: list[str]) -> list[list[float]]:  # a real, deterministic featuriser
        return [[len(t) / 40, sum(c.isascii() for c in t) / len(t)] for t in texts]

    rules = load_rules([{"name": "d", "metric": "prompt_embedding_drift", "comparison": "<",
                         "threshold": 0.01, "window": "1h", "reference_window": "2h"}])  # fmt: skip
    [o] = evaluate(rules, Context(records=ref + live, store=store, embed=embed, min_samples=30,
                                  permutations=100), NOW)  # fmt: skip
    assert o.fired and o.message is not None and o.message.message_type == "drift.detected"
    assert o.message.evidence["test"]["n_live"] == 40
