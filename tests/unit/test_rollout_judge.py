"""The rollout watch's verdict (:func:`herald.serving.deployments.rollout.judge`) and the
per-version metrics it reads from request-log lines."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from herald.serving.deployments.models import RolloutPolicy, parse_deployment
from herald.serving.deployments.rollout import (
    VersionStats,
    evaluation_verdict,
    judge,
    version_stats,
)

P = RolloutPolicy(strategy="canary", min_requests=10, watch_s=60, max_watch_s=600)


def stats(n: int, errors: int = 0, latency: float = 0.1, scores: list[float] | None = None) -> VersionStats:  # fmt: skip
    return VersionStats(n, errors, [latency] * (n - errors), list(scores or []))


def test_waits_until_enough_requests_and_time() -> None:
    assert judge(P, stats(5), stats(50), elapsed_s=120).decision == "wait"
    assert judge(P, stats(10), stats(50), elapsed_s=30).decision == "wait"
    v = judge(P, stats(10), stats(50), elapsed_s=61)
    assert v.decision == "rollout" and "10 canary requests over 61s" in v.reason
    assert v.evidence["canary"]["requests"] == 10 and v.evidence["stable"]["requests"] == 50


def test_breaches_roll_back_early() -> None:
    v = judge(P, stats(6, errors=2), stats(50), elapsed_s=5)
    assert v.decision == "rollback" and "error rate 33.3% over 6 requests" in v.reason
    slow = P.model_copy(update={"max_latency_p95_ms": 500, "min_requests": 3})
    v = judge(slow, stats(4, latency=0.9), stats(4), elapsed_s=1)
    assert v.decision == "rollback" and "p95 latency 900 ms > max 500 ms" in v.reason
    picky = P.model_copy(update={"min_feedback_score": 0.5})
    v = judge(picky, stats(3, scores=[0.0, 0.0, 1.0]), stats(3), elapsed_s=1)
    assert v.decision == "rollback" and "feedback score 0.33 over 3 ratings" in v.reason


def test_evaluation_gate() -> None:
    gated = P.model_copy(update={"require_evaluation": True})
    assert judge(gated, stats(10), stats(10), elapsed_s=100).decision == "wait"
    ok = evaluation_verdict([{"id": "e1", "status": "completed", "step": None, "passed": True}])
    assert judge(gated, stats(10), stats(10), elapsed_s=100, evaluation=ok).decision == "rollout"
    bad = evaluation_verdict([{"id": "e2", "status": "completed", "step": None, "passed": False}])
    v = judge(gated, stats(10), stats(10), elapsed_s=1, evaluation=bad)
    assert v.decision == "rollback" and "its evaluation failed (e2)" in v.reason
    # training-time evaluations do not count
    assert evaluation_verdict([{"id": "e3", "status": "completed", "step": 5}]) == (None, {})
    v = judge(gated, stats(10), stats(10), elapsed_s=700)
    assert v.decision == "rollback" and "no completed evaluation" in v.reason


def test_insufficient_traffic_at_the_deadline() -> None:
    v = judge(P, stats(3), stats(3), elapsed_s=601)
    assert v.decision == "rollback" and "3/10 canary requests" in v.reason
    lenient = P.model_copy(update={"on_insufficient_traffic": "rollout"})
    assert judge(lenient, stats(3), stats(3), elapsed_s=601).decision == "rollout"


def test_version_stats_from_request_log_lines() -> None:
    recs = [
        {
            "time": 5,
            "model": "d",
            "version": "models:/m/2",
            "status": 200,
            "latency_s": 0.2,
            "request_id": "a",
        },
        {"time": 6, "model": "d", "version": "models:/m/2", "status": 500, "request_id": "b"},
        {"time": 6, "model": "d", "version": "models:/m/1", "status": 200, "latency_s": 0.1},
        {"time": 1, "model": "d", "version": "models:/m/2", "status": 500},  # before the watch
        {"time": 7, "model": "other", "version": "models:/m/2", "status": 500},
    ]
    out = version_stats(recs, {"a": 1.0}, "d", since=4)
    c = out["models:/m/2"]
    assert (c.requests, c.errors, c.error_rate, c.feedback_score) == (2, 1, 0.5, 1.0)
    assert c.latency_p95_ms == pytest.approx(200.0)
    assert out["models:/m/1"].requests == 1


def test_policy_validation() -> None:
    with pytest.raises(ValidationError, match="max_watch_s"):
        RolloutPolicy(watch_s=100, max_watch_s=10)
    with pytest.raises(ValidationError, match="canary_weight"):
        RolloutPolicy(canary_weight=50)  # an equal share would make it no canary
    dep = parse_deployment({"name": "d", "targets": [{"model": "models:/m@champion"}]})
    assert dep.rollout.strategy == "replace"  # today's behaviour unless asked
