"""Canary regression → rollback: an ``evaluation.completed`` for a deployment's canary version
that is worse than the stable version beyond the paired-bootstrap interval publishes
``deployment.rollback`` (away from the canary) → ``deployment.rolledback`` → the deployment
serves the newest revision without the canary. Policy branches are checked on the verdict
function with the real evaluation store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from herald.bootstrap import Herald
from herald.bus import EventQuery
from herald.evaluation.jobs import completed_message
from herald.evaluation.messages import EvaluationRequested
from herald.evaluation.store import EvaluationStore
from herald.messages.envelope import Envelope
from herald.serving.deployments.canary import canary_verdicts
from herald.serving.deployments.messages import DeploymentRollback
from herald.serving.deployments.models import parse_deployment
from herald.settings import Settings

SUITE = "qa"


def seed(
    store: EvaluationStore, eid: str, version: str, scores: list[float], **fields: Any
) -> dict[str, Any]:
    store.begin(
        eid,
        suite=SUITE,
        suite_fingerprint="fp1",
        target=version,
        model_version=version,
        primary_metric="exact_match",
        higher_is_better={"exact_match": True},
    )
    for i, s in enumerate(scores):
        store.add_item(
            eid, f"s{i}", i, input={"q": i}, output="a", scores={"exact_match": s}, errors={}
        )
    mean = sum(scores) / len(scores)
    metrics = {"exact_match": {"value": mean, "ci_low": mean, "ci_high": mean, "n": len(scores)}}
    return store.finish(eid, status="completed", metrics=metrics, **fields)


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Herald]:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path))  # the evaluation store of this home
    monkeypatch.setenv("HERALD_EVALUATION__PROMOTION", "false")  # only the canary policy here
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        sensors={"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 2},
        serving={"bundled": False, "registry": False, "deployments": {"health_interval_s": 0.2}},
    )
    h = Herald(settings)
    for v in (1, 2):
        h.registry.register_model_version("m", artifact_uri=f"file:///nowhere/m{v}", kind="full")
    h.registry.set_alias("m", "champion", 1)
    h.deployments.serving = True  # this process applies deployments (as the API process does)
    await h.start()
    yield h
    await h.stop()


async def wait_for(h: Herald, type_: str, **match: Any) -> Envelope:
    for _ in range(1000):
        for e in await h.log.query(EventQuery(types=[type_], limit=1000)):
            if all(e.data.get(k) == v for k, v in match.items()):
                return e
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {type_} {match}")


def fake(model: str, weight: float) -> dict[str, Any]:
    return {"model": model, "weight": weight, "backend": "fake"}


async def test_regressed_canary_is_rolled_back_by_the_default_sensor(env: Herald) -> None:
    h = env
    emit = h.catalog.validate
    await h.emit(emit("deployment.requested", {"name": "chat", "targets": [fake("models:/m@champion", 100)]}))  # fmt: skip
    await wait_for(h, "deployment.ready", name="chat", revision=1)
    add = {"name": "chat", "add": [fake("models:/m/2", 10)], "weights": {"models:/m/1": 90}}
    await h.emit(emit("deployment.traffic.changed", add))
    await wait_for(h, "deployment.ready", name="chat", revision=2)
    await h.emit(emit("deployment.traffic.changed", {"name": "chat", "weights": {"models:/m/2": 20}}))  # fmt: skip
    await wait_for(h, "deployment.ready", name="chat", revision=3)

    store = h.services.evaluations  # the results the canary sensor reads
    seed(store, "ev-stable", "models:/m/1", [1.0] * 40)
    canary = seed(store, "ev-canary", "models:/m/2", [0.0] * 30 + [1.0] * 10)
    await h.emit(completed_message(canary))

    rb = await wait_for(h, "deployment.rollback", name="chat")
    assert rb.data["away_from"] == "models:/m/2"
    assert (
        "canary models:/m/2 regressed: exact_match 0.25 vs 1 for models:/m/1" in rb.data["reason"]
    )
    done = await wait_for(h, "deployment.rolledback", name="chat")
    assert [t["version"] for t in done.data["targets"]] == ["models:/m/1"]  # revision 1's
    await wait_for(h, "deployment.ready", name="chat", revision=4)
    assert [g.version for g in h.deployments.active["chat"].groups] == ["models:/m/1"]
    routed = [(await h.serving.route("chat", user=None)).spec.version for _ in range(50)]
    assert set(routed) == {"models:/m/1"}
    assert h.deployments.store.get("chat").reason.startswith("canary models:/m/2 regressed")


async def test_canary_policy_branches(tmp_path: Path) -> None:
    store = EvaluationStore.from_home(tmp_path)
    dep = parse_deployment(
        {
            "name": "chat",
            "targets": [
                {"model": "models:/m@champion", "weight": 90, "version": "models:/m/1"},
                {"model": "models:/m/2", "weight": 10, "version": "models:/m/2"},
            ],
        }
    )
    same = completed_message(seed(store, "ev-same", "models:/m/2", [1.0] * 20))
    # no baseline yet: the stable version is evaluated once, then re-judges the canary
    [req] = canary_verdicts(same, [dep, dep.model_copy(update={"name": "chat2"})], store)
    assert isinstance(req, EvaluationRequested)
    assert req.target == "models:/m/1" and req.options == {"canary_for": "ev-same"}
    base = completed_message(seed(store, "ev-base", "models:/m/1", [1.0] * 20))
    baseline_done = base.model_copy(update={"options": {"canary_for": "ev-same"}})
    assert canary_verdicts(baseline_done, [dep], store) == []  # equal: no rollback
    worse = completed_message(seed(store, "ev-worse", "models:/m/2", [0.0] * 20))
    [rb] = canary_verdicts(worse, [dep], store)
    assert isinstance(rb, DeploymentRollback) and rb.away_from == "models:/m/2"
    assert "interval" in rb.reason and "20 shared items" in rb.reason
    # the stable version's own evaluation, or a version that is no canary: nothing
    assert canary_verdicts(base, [dep], store) == []
    main = dep.model_copy(deep=True)
    main.targets[1].weight = 90
    main.targets[0].weight = 10
    assert canary_verdicts(worse, [main], store) == []  # models:/m/2 is the main version
    # disabled per deployment
    off = dep.model_copy(update={"canary": dep.canary.model_copy(update={"enabled": False})})
    assert canary_verdicts(worse, [off], store) == []
    # thresholds: a minimum score and failed suite thresholds, without comparing
    strict = dep.model_copy(
        update={
            "canary": dep.canary.model_copy(
                update={"min_scores": {"exact_match": 1.5}, "compare_with_stable": False}
            )
        }
    )
    [rb] = canary_verdicts(same, [strict], store)
    assert "exact_match 1 is below the minimum 1.5" in rb.reason
    failed = same.model_copy(
        update={"passed": False, "thresholds": {"exact_match": {"min": 2, "passed": False}}}
    )
    lenient = strict.model_copy(update={"canary": strict.canary.model_copy(update={"min_scores": {}})})  # fmt: skip
    [rb] = canary_verdicts(failed, [lenient], store)
    assert "the suite's thresholds failed (exact_match)" in rb.reason
    # evaluations during training are no verdict
    assert canary_verdicts(worse.model_copy(update={"step": 10}), [dep], store) == []


def _gated(dep: Any, min_scores: dict[str, float]) -> Any:
    policy = dep.canary.model_copy(update={"min_scores": min_scores, "compare_with_stable": False})
    return dep.model_copy(update={"canary": policy})


async def test_canary_gates_use_the_guides_metric_names_and_the_canarys_sample_limit(
    tmp_path: Path,
) -> None:
    """Issue 14: ``--min-score exact_match=0.5`` (the deployments guide's spelling) never matched
    ``reference.exact_match``, and a canary run with ``--limit`` never met a comparable baseline."""
    store = EvaluationStore.from_home(tmp_path)
    dep = parse_deployment(
        {
            "name": "chat",
            "targets": [
                {"model": "models:/m@champion", "weight": 90, "version": "models:/m/1"},
                {"model": "models:/m/2", "weight": 10, "version": "models:/m/2"},
            ],
        }
    )
    low = completed_message(seed(store, "ev-low", "models:/m/2", [0.0, 1.0, 0.0, 0.0]))
    low = low.model_copy(update={"metrics": {"reference." + k: v for k, v in low.metrics.items()}})
    # the short name means the one engine.metric of that name
    [rb] = canary_verdicts(low, [_gated(dep, {"exact_match": 0.5})], store)
    assert isinstance(rb, DeploymentRollback)
    assert "reference.exact_match 0.25 is below the minimum 0.5" in rb.reason
    assert canary_verdicts(low, [_gated(dep, {"exact_match": 0.2})], store) == []
    # a gate that names no reported metric cannot pass silently
    [rb] = canary_verdicts(low, [_gated(dep, {"bleu": 0.5})], store)
    assert "bleu cannot be checked" in rb.reason and "reference.exact_match" in rb.reason
    # the stable version's baseline runs on the canary's sample limit (same fingerprint)
    limited = completed_message(seed(store, "ev-lim", "models:/m/2", [1.0] * 5))
    limited = limited.model_copy(update={"options": {"limit": 5}})
    [req] = canary_verdicts(limited, [dep], store)
    assert isinstance(req, EvaluationRequested)
    assert req.target == "models:/m/1" and req.limit == 5
    assert req.options == {"canary_for": "ev-lim"}
