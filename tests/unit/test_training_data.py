"""Prompt rendering with the chat template, label masking, truncation, packing, padding."""

from __future__ import annotations

from typing import Any

import pytest

from herald.training.data import (
    DEFAULT_CHAT_TEMPLATE,
    IGNORE,
    Collator,
    ensure_chat_template,
    prepare,
    to_messages,
)
from herald.training.errors import TrainingError


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoTokenizer

    from herald.models.testing import tiny_llama

    path = tiny_llama(tmp_path_factory.mktemp("tiny") / "m")
    return AutoTokenizer.from_pretrained(path)


def trained_text(tok: Any, ids: list[int], labels: list[int]) -> str:
    return str(tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE]))


CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "5."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
}


def test_chat_rows_train_only_on_assistant_turns(tokenizer: Any) -> None:
    [ex], stats = prepare([CHAT], "chat", tokenizer, sequence_len=512)
    assert trained_text(tokenizer, ex.input_ids, ex.labels) == "5.<|im_end|>\nParis.<|im_end|>\n"
    rendered = tokenizer.apply_chat_template(CHAT["messages"], tokenize=False)
    assert tokenizer.decode(ex.input_ids) == rendered  # exactly the model's chat template
    assert stats.rows_unmasked == 0
    assert stats.trainable_tokens < stats.tokens


def test_train_on_inputs_trains_on_everything(tokenizer: Any) -> None:
    [ex], stats = prepare([CHAT], "chat", tokenizer, sequence_len=512, train_on_inputs=True)
    assert ex.labels == ex.input_ids
    assert stats.trainable_tokens == stats.tokens


def test_instruction_rows_become_a_conversation(tokenizer: Any) -> None:
    row = {"instruction": "Convert 3 km", "input": "to metres", "output": "3000 metres."}
    assert to_messages(row, "instruction") == [
        {"role": "user", "content": "Convert 3 km\n\nto metres"},
        {"role": "assistant", "content": "3000 metres."},
    ]
    [ex], _ = prepare([row], "instruction", tokenizer, sequence_len=512)
    assert trained_text(tokenizer, ex.input_ids, ex.labels) == "3000 metres.<|im_end|>\n"


def test_text_rows_are_used_as_is_with_eos(tokenizer: Any) -> None:
    [ex], _ = prepare([{"text": "The quick brown fox"}], "text", tokenizer, sequence_len=64)
    assert tokenizer.decode(ex.input_ids) == "The quick brown fox<|im_end|>"
    assert ex.labels == ex.input_ids


def test_long_rows_are_truncated_and_rows_without_targets_dropped(tokenizer: Any) -> None:
    long = {"instruction": "word " * 40, "output": "answer"}
    short = {"instruction": "hi", "output": "The answer is 5."}
    no_answer = {"messages": [{"role": "user", "content": "hello"}]}
    out, stats = prepare([short, long], "instruction", tokenizer, sequence_len=24)
    assert stats.rows_truncated == 1  # the long prompt was cut at sequence_len ...
    assert stats.rows_dropped == 1  # ... leaving nothing to learn: dropped, and counted
    assert len(out) == 1 and len(out[0].input_ids) <= 24
    out, stats = prepare([no_answer, CHAT], "chat", tokenizer, sequence_len=512)
    assert stats.rows_dropped == 1 and stats.dropped_examples == [0]
    truncated, stats = prepare([CHAT], "chat", tokenizer, sequence_len=30)
    assert stats.rows_truncated == 1 and len(truncated[0].input_ids) == 30


def test_packing_fills_blocks(tokenizer: Any) -> None:
    rows = [{"instruction": f"What is {i} + {i}?", "output": f"{2 * i}."} for i in range(10)]
    plain, _ = prepare(rows, "instruction", tokenizer, sequence_len=64)
    packed, stats = prepare(rows, "instruction", tokenizer, sequence_len=64, packing=True)
    total = sum(len(e.input_ids) for e in plain)
    assert sum(len(e.input_ids) for e in packed) == total
    assert all(len(e.input_ids) == 64 for e in packed[:-1])
    assert stats.examples == len(packed) < len(plain)


def test_default_chat_template_when_the_tokenizer_has_none(tokenizer: Any) -> None:
    import copy

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = None
    assert ensure_chat_template(tok, "text") is None
    assert ensure_chat_template(tok, "chat") == DEFAULT_CHAT_TEMPLATE
    assert tok.chat_template == DEFAULT_CHAT_TEMPLATE


def test_bad_rows_and_formats(tokenizer: Any) -> None:
    with pytest.raises(TrainingError, match="messages"):
        prepare([{"messages": []}], "chat", tokenizer, sequence_len=64)
    with pytest.raises(TrainingError, match="unknown data format"):
        prepare([{"text": "x"}], "audio", tokenizer, sequence_len=64)


def test_collator_pads_right_and_masks_padding() -> None:
    batch = Collator(pad_token_id=0)(
        [{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
