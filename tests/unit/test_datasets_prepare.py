"""The pure core: format detection, row validation, dedupe, split, fingerprint, statistics."""

from __future__ import annotations

from typing import Any

import pytest

from herald.datasets import DatasetError, detect_format, fingerprint, prepare, split_rows


def chat(q: str, a: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def test_detects_each_format() -> None:
    assert detect_format(["messages", "id"]) == "chat"
    assert detect_format(["instruction", "input", "output"]) == "instruction"
    assert detect_format(["text"]) == "text"


def test_unknown_columns_name_the_expected_and_nearest_column() -> None:
    with pytest.raises(DatasetError) as e:
        detect_format(["instrution", "output"])
    assert "'instruction' (instruction) looks like 'instrution'" in e.value.message
    assert "'messages' (chat)" in e.value.message


def test_missing_column_for_requested_format() -> None:
    with pytest.raises(DatasetError) as e:
        prepare([{"prompt": "q", "outputs": "a"}], format="instruction")
    msg = e.value.message
    assert "missing 'instruction'" in msg and "'output' (nearest column present: 'outputs')" in msg


def test_empty_dataset_is_an_error() -> None:
    with pytest.raises(DatasetError, match="has no rows"):
        prepare([], source="empty.jsonl")


def test_row_errors_are_reported_with_row_field_and_problem() -> None:
    rows: list[Any] = [
        chat("q", "a"),
        {"messages": [{"role": "human", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "only a question"}]},
        {"messages": "not json"},
        {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]},
    ]
    with pytest.raises(DatasetError) as e:
        prepare(rows, source="bad.jsonl", row_numbers=[1, 2, 4, 5, 9])
    details = e.value.details
    assert details["error_count"] == 4
    assert [(x["row"], x["field"]) for x in details["errors"]] == [
        (2, "messages[0].role"),
        (4, "messages"),
        (5, "messages"),
        (9, "messages[0].content"),
    ]
    assert "did you mean 'user'" in details["errors"][0]["problem"]
    assert "no assistant message" in details["errors"][1]["problem"]
    assert e.value.message.startswith("4 problem(s) in bad.jsonl: row 2, messages[0].role")


def test_error_list_is_capped_but_counted() -> None:
    rows = [{"text": ""} for _ in range(120)]
    with pytest.raises(DatasetError) as e:
        prepare(rows, max_errors=10)
    assert e.value.details["error_count"] == 120 and len(e.value.details["errors"]) == 10
    assert "(+115 more)" in e.value.message


def test_instruction_rows_are_normalised() -> None:
    p = prepare(
        [
            {"instruction": "Add", "input": None, "output": "5", "id": 1},
            {"instruction": "Caf\u0065\u0301\r\n", "output": "x"},
        ]
    )
    assert p.format == "instruction"
    assert p.train[0] == {"instruction": "Add", "input": "", "output": "5"}
    assert p.train[1]["instruction"] == "Caf\u00e9\n"  # NFC and \n line endings
    assert p.ignored_columns == ["id"]


def test_instruction_output_must_be_text() -> None:
    with pytest.raises(DatasetError, match="row 1, output: expected a string, got int"):
        prepare([{"instruction": "2+3", "output": 5}])


def test_chat_content_parts_and_tool_calls() -> None:
    call = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    row = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {"role": "assistant", "content": None, "tool_calls": call},
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
            {"role": "assistant", "content": "It is 42."},
        ]
    }
    p = prepare([row])
    msgs = p.train[0]["messages"]
    assert msgs[0] == {"role": "user", "content": "ab"}
    assert msgs[1]["tool_calls"] == call and msgs[2]["tool_call_id"] == "c1"


def test_duplicates_are_removed_and_counted() -> None:
    rows = [chat("q", "a"), chat("q", "a"), chat("q2", "a2"), {"text": "x"}]
    p = prepare(rows[:3])
    assert p.rows == 2 and p.duplicates_removed == 1 and p.input_rows == 3
    assert prepare(rows[:3], dedupe=False).rows == 3


def test_pii_counted_and_optionally_redacted() -> None:
    rows = [chat("my mail is a@b.io", "call +1 415 555 0132"), chat("ip 10.1.2.3", "ok")]
    kept = prepare(rows)
    assert kept.pii["email"] == 1 and kept.pii["phone"] == 1 and kept.pii["ipv4"] == 1
    assert "a@b.io" in kept.train[0]["messages"][0]["content"]
    red = prepare(rows, redact_pii=True)
    assert red.train[0]["messages"][0]["content"] == "my mail is [EMAIL]"
    assert red.pii == kept.pii and red.pii_redacted
    assert red.fingerprint != kept.fingerprint


def test_split_is_deterministic_and_keeps_order() -> None:
    rows = [{"text": str(i)} for i in range(100)]
    t1, v1 = split_rows(rows, 0.1, seed=1)
    t2, v2 = split_rows(rows, 0.1, seed=1)
    _, v3 = split_rows(rows, 0.1, seed=2)
    assert (t1, v1) == (t2, v2) and v1 != v3
    assert len(v1) == 10 and len(t1) == 90
    assert [int(r["text"]) for r in v1] == sorted(int(r["text"]) for r in v1)
    assert split_rows(rows[:3], 0.01, seed=0)[1] != []  # at least one validation row


def test_split_that_leaves_no_training_rows_is_an_error() -> None:
    with pytest.raises(DatasetError, match="leaves no training rows"):
        split_rows([{"text": "a"}], 0.5, seed=0)


def test_fingerprint_is_content_addressed() -> None:
    a = prepare([{"text": "x", "extra": 1}, {"text": "y"}])
    b = prepare([{"extra": 2, "text": "x"}, {"text": "y"}])
    assert a.fingerprint == b.fingerprint  # column order and dropped columns do not count
    assert prepare([{"text": "y"}, {"text": "x"}]).fingerprint != a.fingerprint  # order does
    assert a.fingerprint == fingerprint("text", [{"text": "x"}, {"text": "y"}], [])
    assert len(a.fingerprint) == 64


def test_statistics_with_whitespace_and_a_tokenizer() -> None:
    rows = [{"text": "one two three"}, {"text": "four"}, {"text": "five six"}]
    p = prepare(rows, validation_fraction=0.34, seed=0)
    s = p.stats
    assert s["tokenizer"] == "whitespace" and s["rows"] == 3
    assert s["tokens"]["min"] == 1 and s["tokens"]["max"] == 3 and s["total_tokens"] == 6
    assert set(s["splits"]) == {"train", "validation"}
    assert s["splits"]["train"]["rows"] + s["splits"]["validation"]["rows"] == 3
    assert p.splits == {"train": 2, "validation": 1}

    class CharTokenizer:
        name_or_path = "chars"

        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            return [ord(c) for c in text]

    s2 = prepare(rows, tokenizer=CharTokenizer()).stats
    assert s2["tokenizer"] == "chars" and s2["tokens"]["max"] == len("one two three")
