"""Suite validation names each bad field; bad data set lines become recorded items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herald.evaluation.errors import SuiteError, TargetError
from herald.evaluation.suites import load_samples, load_suite, parse_suite
from herald.evaluation.targets import parse_target

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "examples" / "eval"


def _data(tmp_path: Path, rows: list[object]) -> Path:
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return p


def test_every_shipped_suite_is_valid_and_big_enough() -> None:
    sizes = {}
    for path in sorted(SHIPPED.glob("*.yaml")):
        suite = load_suite(str(path))
        good, bad = load_samples(suite)
        assert not bad, (path, bad[:2])
        sizes[suite.name] = len(good)
    for name in ("factual-qa", "multiple-choice", "format-following", "safety"):
        assert sizes[name] >= 100, sizes
    assert sizes["tiny"] == 5


def test_suite_by_name_from_search_paths() -> None:
    assert load_suite("tiny", [SHIPPED]).name == "tiny"
    with pytest.raises(SuiteError, match="not found"):
        load_suite("nope", [SHIPPED])


def test_missing_and_bad_fields_are_named(tmp_path: Path) -> None:
    _data(tmp_path, [{"id": "a", "prompt": "x"}])
    with pytest.raises(SuiteError) as exc:
        parse_suite({"name": "s", "dataset": "d.jsonl"}, base_dir=tmp_path)
    assert "engines: Field required" in exc.value.message
    with pytest.raises(SuiteError) as exc:
        parse_suite(
            {
                "name": "s",
                "dataset": "d.jsonl",
                "engines": [
                    {"engine": "nope"},
                    {"engine": "reference", "metrics": ["accuracy"]},
                    {"engine": "judge", "options": {"scale": 1}},
                ],
            },
            base_dir=tmp_path,
        )
    msg = exc.value.message
    assert "engines.0.engine: unknown engine 'nope'" in msg
    assert "engines.1.metrics: unknown metric(s) accuracy" in msg
    assert "engines.2.options.scale" in msg
    with pytest.raises(SuiteError, match=r"thresholds: 'reference\.bleu' is not a metric"):
        parse_suite(
            {
                "name": "s",
                "dataset": "d.jsonl",
                "engines": [{"engine": "reference"}],
                "thresholds": {"reference.bleu": {"min": 0.1}},
            },
            base_dir=tmp_path,
        )
    with pytest.raises(SuiteError, match="dataset: file not found"):
        parse_suite(
            {"name": "s", "dataset": "x.jsonl", "engines": [{"engine": "format"}]},
            base_dir=tmp_path,
        )
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(str(tmp_path / "bad.yaml"))


def test_bad_lines_are_kept_as_invalid_samples(tmp_path: Path) -> None:
    _data(
        tmp_path,
        [
            {"id": "ok", "messages": [{"role": "user", "content": "hi"}], "reference": "x"},
            "{not json",
            {"id": "noinput", "reference": "x"},
            {"id": "ok", "prompt": "dupe"},
            {"id": "mc", "prompt": "q", "choices": ["a", "b"], "answer": 5},
            {
                "id": "img",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AA=="},
                            },
                        ],
                    }
                ],
            },
            {"id": "badimg", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        ],
    )
    suite = parse_suite(
        {"name": "s", "dataset": "d.jsonl", "engines": [{"engine": "reference"}]},
        base_dir=tmp_path,
    )
    good, bad = load_samples(suite)
    assert [s.id for s in good] == ["ok", "img"]
    assert good[1].has_images()
    reasons = {b.id: b.error for b in bad}
    assert reasons["line-2"].startswith("not valid JSON")
    assert "needs 'messages', 'prompt' or 'text'" in reasons["noinput"]
    assert reasons["ok#4"] == "duplicate id"
    assert "'answer' must index one of 'choices'" in reasons["mc"]
    assert "image_url.url" in reasons["badimg"]


def test_targets_are_parsed_or_refused(tmp_path: Path) -> None:
    assert parse_target("models:/m@champion").kind == "registry"
    ep = parse_target("http://127.0.0.1:9/v1#gpt")
    assert (ep.kind, ep.model, ep.base_url) == ("endpoint", "gpt", "http://127.0.0.1:9/v1")
    assert parse_target("deployment:web", herald_url="http://h:1").base_url == "http://h:1/v1"
    assert parse_target(str(tmp_path)).kind == "checkpoint"
    assert parse_target("smollm2-135m-instruct").kind == "served"
    with pytest.raises(TargetError, match="needs a model"):
        parse_target("http://127.0.0.1:9/v1")
    with pytest.raises(TargetError, match="checkpoint folder not found"):
        parse_target("./no/such/dir")
    with pytest.raises(TargetError, match="bad registry target"):
        parse_target("models:/bad name")
