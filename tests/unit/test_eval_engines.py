"""Engines and the runner through Herald's in-process gateway on fake backends (real HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from herald.evaluation.engines.format import extract_json, run_checks
from herald.evaluation.engines.judge import parse_score, parse_verdict
from herald.evaluation.errors import ItemError, TargetUnreachable
from herald.evaluation.runner import EvaluationCancelled, EvaluationPlan, run_evaluation
from herald.evaluation.store import EvaluationStore
from herald.evaluation.suites import load_suite, parse_suite
from herald.evaluation.targets import parse_target
from herald.security.egress import EgressDenied
from herald.settings import SecuritySettings, Settings

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "eval" / "tiny.yaml"


def settings(tmp_path: Path, **models: dict[str, Any]) -> Settings:
    served = {n: {"backend": "fake", "model": n, "options": o} for n, o in models.items()}
    return Settings(home=tmp_path / "home", serving={"models": served, "bundled": False})


def fake(reply: str) -> Any:
    return parse_target("candidate", backend="fake", backend_options={"reply": reply})


def suite(tmp_path: Path, rows: list[dict[str, Any]], engines: list[dict[str, Any]], **kw: Any):
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return parse_suite(
        {"name": "t", "dataset": "d.jsonl", "engines": engines, **kw}, base_dir=tmp_path
    )


async def run(tmp_path: Path, s: Any, target: Any, eid: str = "e1", **kw: Any) -> dict[str, Any]:
    store = EvaluationStore(tmp_path / "ev.db")
    return await run_evaluation(
        EvaluationPlan(eid, s, target, concurrency=4),
        store,
        settings=kw.pop("settings", None) or settings(tmp_path),
        **kw,
    )


def qa(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"q{i}", "messages": [{"role": "user", "content": f"q {i}?"}], "reference": "Paris"}
        for i in range(n)
    ]


async def test_reference_and_performance_on_tiny(tmp_path: Path) -> None:
    ev = await run(tmp_path, load_suite(str(TINY)), fake("Paris"))
    assert ev["status"] == "completed" and ev["done"] == 5 and ev["failed_items"] == 0
    m = ev["metrics"]
    assert m["reference.exact_match"]["value"] == pytest.approx(0.2)  # only capital-000 is Paris
    assert m["reference.exact_match"]["n"] == 5 and m["reference.exact_match"]["errors"] == 0
    assert m["reference.exact_match"]["ci_low"] <= 0.2 <= m["reference.exact_match"]["ci_high"]
    assert m["performance.completion_tokens"]["value"] == 1.0
    assert m["performance.latency_s"]["value"] > 0 and "p95" in m["performance.latency_s"]
    items = EvaluationStore(tmp_path / "ev.db").items("e1")
    assert items[0]["output"] == "Paris" and items[0]["scores"]["reference.exact_match"] == 1.0
    assert items[0]["input"]["messages"][0]["role"] == "user"


async def test_multiple_choice_by_loglikelihood(tmp_path: Path) -> None:
    rows = [
        {
            "id": "m",
            "prompt": "Question: q\nAnswer:",
            "choices": ["a", "b c d"],
            "answer": 0,
            "text": "one two three",
        }
    ]
    s = suite(tmp_path, rows, [{"engine": "reference", "metrics": ["mc_accuracy", "perplexity"]}])
    ev = await run(tmp_path, s, fake("x"))
    # fake logprobs: token i scores -(0.1 + (i % 7) * 0.25); one-token choice "a" wins
    assert ev["metrics"]["reference.mc_accuracy"]["value"] == 1.0
    assert ev["metrics"]["reference.perplexity"]["errors"] == 0
    # "one two three": tokens 2 and 3 are scored, -0.35 and -0.6 -> exp(0.475)
    assert ev["metrics"]["reference.perplexity"]["value"] == pytest.approx(2.71828**0.475, 1e-3)


async def test_judge_scores_and_unparsable_verdicts_are_counted(tmp_path: Path) -> None:
    st = settings(tmp_path, good={"reply": "Score: 4"}, chatty={"reply": "It is quite good."})
    ok = suite(tmp_path, qa(3), [{"engine": "judge", "options": {"judge": "good"}}])
    ev = await run(tmp_path, ok, fake("Paris"), "j1", settings=st)
    assert ev["metrics"]["judge.score"]["value"] == pytest.approx(0.75)
    bad = suite(tmp_path, qa(3), [{"engine": "judge", "options": {"judge": "chatty"}}])
    ev = await run(tmp_path, bad, fake("Paris"), "j2", settings=st)
    summary = ev["metrics"]["judge.score"]
    assert (summary["value"], summary["n"], summary["errors"], summary["total"]) == (None, 0, 3, 3)
    items = EvaluationStore(tmp_path / "ev.db").items("j2", failed=True)
    assert len(items) == 3
    assert "did not parse" in items[0]["errors"]["judge"]["error"]
    assert items[0]["errors"]["judge"]["judge_output"] == "It is quite good."


async def test_pairwise_judge_controls_position_bias(tmp_path: Path) -> None:
    st = settings(tmp_path, biased={"reply": "[[A]]"})
    s = suite(
        tmp_path, qa(2), [{"engine": "judge", "options": {"judge": "biased", "mode": "pairwise"}}]
    )
    ev = await run(tmp_path, s, fake("Rome"), settings=st)
    # a judge that always says A: wins in one order, loses in the other
    assert ev["metrics"]["judge.win_rate"]["value"] == 0.5
    assert ev["metrics"]["judge.position_consistency"]["value"] == 0.0


async def test_format_and_safety(tmp_path: Path) -> None:
    rows = [
        {
            "id": "j",
            "messages": [{"role": "user", "content": "json"}],
            "checks": {"json_schema": {"type": "object", "required": ["a"]}},
        },
        {
            "id": "w",
            "messages": [{"role": "user", "content": "short"}],
            "checks": {"max_words": 2},
            "metadata": {"secrets": ["bob@example.com"]},
        },
    ]
    s = suite(
        tmp_path,
        rows,
        [{"engine": "format"}, {"engine": "safety", "options": {"blocked_terms": ["password"]}}],
    )
    ev = await run(tmp_path, s, fake('Here: {"a": 1} mail bob@example.com password'))
    m = ev["metrics"]
    assert m["format.json_valid"]["value"] == 1.0 and m["format.json_valid"]["n"] == 1
    assert m["format.instruction_following"]["value"] == 0.5  # the max_words check fails
    assert m["safety.pii_leak"]["value"] == 1.0 and m["safety.blocked_term"]["value"] == 1.0


def test_format_checks_by_hand() -> None:
    assert extract_json('```json\n{"x": [1, 2]}\n```') == {"x": [1, 2]}
    with pytest.raises(ValueError):
        extract_json("no json")
    res = run_checks(
        "The quiet morning is blue.",
        {
            "keywords": ["quiet", "green"],
            "max_words": 5,
            "language": "en",
            "ends_with": ".",
        },
    )
    assert res == {
        "max_words": True,
        "keyword:quiet": True,
        "keyword:green": False,
        "language": True,
        "ends_with": True,
    }
    with pytest.raises(ValueError, match="unknown check"):
        run_checks("x", {"colour": "red"})


def test_judge_parsers() -> None:
    assert parse_score("Score: 4", 5) == 4.0
    assert parse_score('{"score": 2}', 5) == 2.0
    assert parse_score("3", 5) == 3.0
    for bad in ("Score: 9", "great answer", ""):
        with pytest.raises(ItemError, match="did not parse"):
            parse_score(bad, 5)
    assert parse_verdict("[[B]]") == "B"
    assert parse_verdict("Verdict: tie") == "tie"
    assert parse_verdict("a") == "A"
    with pytest.raises(ItemError):
        parse_verdict("both are fine")


async def test_resume_after_interruption_skips_stored_items(tmp_path: Path) -> None:
    s = suite(tmp_path, qa(12), [{"engine": "reference"}])
    calls = {"n": 0}

    def stop_after_four() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    with pytest.raises(EvaluationCancelled):
        await run(tmp_path, s, fake("Paris"), "r1", cancelled=stop_after_four)
    store = EvaluationStore(tmp_path / "ev.db")
    first = {i["sample_id"]: i for i in store.items("r1")}
    assert 1 <= len(first) < 12
    seen: list[int] = []
    ev = await run(
        tmp_path, s, fake("Paris"), "r1", progress=lambda done, total, errors: seen.append(done)
    )
    assert ev["done"] == 12 and ev["metrics"]["reference.exact_match"]["value"] == 1.0
    assert len(seen) == 12 - len(first)  # only the missing items ran
    again = {i["sample_id"]: i for i in store.items("r1")}
    assert all(again[k] == v for k, v in first.items())


async def test_generation_failures_are_recorded_per_item(tmp_path: Path) -> None:
    st = settings(tmp_path, crashy={"fail_after": 0})
    s = suite(tmp_path, qa(3), [{"engine": "reference"}])
    ev = await run(tmp_path, s, parse_target("crashy"), settings=st)
    m = ev["metrics"]["reference.exact_match"]
    assert (m["n"], m["errors"]) == (0, 3)
    item = EvaluationStore(tmp_path / "ev.db").items(ev["id"])[0]
    assert item["errors"]["reference"]["error"].startswith("generation failed")


async def test_unreachable_endpoint_fails_early(tmp_path: Path) -> None:
    s = suite(tmp_path, qa(1), [{"engine": "reference"}])
    opened = settings(tmp_path).model_copy(
        update={"security": SecuritySettings(egress={"allow_private": True})}
    )
    with pytest.raises(TargetUnreachable, match="cannot reach"):
        await run(tmp_path, s, parse_target("http://127.0.0.1:9/v1#m"), settings=opened)
    with pytest.raises(EgressDenied, match="loopback"):  # the default egress policy
        await run(tmp_path, s, parse_target("http://127.0.0.1:9/v1#m"))


async def test_compare_and_leaderboard(tmp_path: Path) -> None:
    s = suite(
        tmp_path,
        qa(40),
        [{"engine": "reference", "metrics": ["exact_match"]}],
        primary_metric="reference.exact_match",
    )
    await run(tmp_path, s, fake("Rome"), "bad")
    await run(
        tmp_path,
        s,
        parse_target("other", backend="fake", backend_options={"reply": "Paris"}),
        "good",
    )
    store = EvaluationStore(tmp_path / "ev.db")
    res = store.compare(["bad", "good"])["comparisons"][0]["metrics"]["reference.exact_match"]
    assert res["diff"] == 1.0 and res["better"] and res["p_value"] == 0.0
    board = store.leaderboard("t")
    assert [r["evaluation_id"] for r in board["data"]] == ["good", "bad"]
    assert board["metric"] == "reference.exact_match"


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        (20, (20 - 1) / (1.0 - 0.05)),  # streamed: decode speed after the first token
        (1, 20 / 1.0),  # one chunk (a guardrail held it back): end-to-end, not 19/1e-4
        (None, (20 - 1) / (1.0 - 0.05)),  # not streamed: as reported
    ],
)
async def test_tokens_per_s_of_a_stream_that_arrived_in_one_chunk(
    chunks: int | None, expected: float
) -> None:
    from herald.evaluation.base import ItemContext
    from herald.evaluation.engines.performance import PerformanceEngine
    from herald.evaluation.targets import ChatResult

    ttft = 0.05 if chunks != 1 else 1.0 - 1e-4
    response = ChatResult("x" * 80, 1.0, ttft, 10, 20, "stop", content_chunks=chunks)
    engine = PerformanceEngine(["tokens_per_s"], {})
    item = ItemContext(sample=None, run=None, response=response)  # type: ignore[arg-type]
    out = await engine.score(item)
    assert out["tokens_per_s"] == pytest.approx(expected)
