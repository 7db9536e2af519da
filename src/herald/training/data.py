"""Training rows → token ids and labels, rendered with the model's chat template.

* chat rows (``messages``) are rendered with ``tokenizer.apply_chat_template``; instruction rows
  (``instruction``/``input``/``output``) become a user turn and an assistant turn first;
  plain ``text`` rows are used as they are (plus the EOS token).
* Labels are masked (-100) on everything but the assistant turns unless ``train_on_inputs``.
  The assistant spans come from rendering the conversation prefix by prefix; when a template
  does not render prefixes consistently, the row trains on its final assistant turn, and if even
  that cannot be located, on all tokens (counted as ``rows_unmasked``).
* Rows longer than ``sequence_len`` are **truncated** (the end is cut, counted as
  ``rows_truncated``); a row left with no trainable token after truncation is **dropped**
  (counted as ``rows_dropped``), as is a row with nothing to learn (no assistant turn).
* ``packing`` concatenates examples and cuts the stream into ``sequence_len`` blocks (attention
  crosses example boundaries inside a block, as with the HF Trainer's basic packing).

No torch here: the collator pads lists of ints into tensors lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from herald.training.errors import TrainingError

IGNORE = -100

# ChatML: used when a tokenizer has no chat template and the data is chat or instruction.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


@dataclass
class PrepareStats:
    rows: int = 0
    examples: int = 0
    rows_truncated: int = 0
    rows_dropped: int = 0
    rows_unmasked: int = 0
    tokens: int = 0
    trainable_tokens: int = 0
    max_row_tokens: int = 0
    dropped_examples: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "examples": self.examples,
            "rows_truncated": self.rows_truncated,
            "rows_dropped": self.rows_dropped,
            "rows_unmasked": self.rows_unmasked,
            "tokens": self.tokens,
            "trainable_tokens": self.trainable_tokens,
            "max_row_tokens": self.max_row_tokens,
        }


def to_messages(row: dict[str, Any], fmt: str) -> list[dict[str, str]]:
    """A chat or instruction row as OpenAI-style messages."""
    if fmt == "chat":
        msgs = row.get("messages")
        if not isinstance(msgs, list) or not msgs:
            raise TrainingError("a chat row needs a non-empty 'messages' list")
        return [{"role": str(m["role"]), "content": str(m.get("content") or "")} for m in msgs]
    if fmt == "instruction":
        prompt = str(row.get("instruction") or "")
        extra = row.get("input")
        if extra:
            prompt = f"{prompt}\n\n{extra}"
        return [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": str(row.get("output") or "")},
        ]
    raise TrainingError(f"rows of format {fmt!r} are not conversations")


def _render(tokenizer: Any, messages: list[dict[str, str]], gen: bool) -> str:
    if not messages:
        return ""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
    return str(text)


def chat_spans(
    tokenizer: Any, messages: list[dict[str, str]]
) -> tuple[str, list[tuple[int, int]], bool]:
    """(rendered text, character spans of assistant turns, whether the spans are exact)."""
    full = _render(tokenizer, messages, False)
    spans: list[tuple[int, int]] = []
    exact = True
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], True)
        upto = _render(tokenizer, messages[: i + 1], False)
        if upto.startswith(before) and full.startswith(upto) and len(upto) > len(before):
            spans.append((len(before), len(upto)))
        else:
            exact = False
            break
    if exact:
        return full, spans, True
    # fallback: the final assistant turn is whatever follows the generation prompt
    if messages[-1]["role"] == "assistant":
        prompt = _render(tokenizer, messages[:-1], True)
        if full.startswith(prompt) and len(full) > len(prompt):
            return full, [(len(prompt), len(full))], True
    return full, [(0, len(full))], False


def _encode_spans(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> Encoded:
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        labels = [IGNORE] * len(ids)
        for k, (a, b) in enumerate(enc["offset_mapping"]):
            if b > a and any(s <= a < e for s, e in spans):
                labels[k] = ids[k]
        return Encoded(ids, labels)
    # slow tokenizers: encode segment by segment
    ids, labels, pos = [], [], 0
    cuts = sorted(spans)
    for s, e in [*cuts, (len(text), len(text))]:
        if s > pos:
            part = tokenizer.encode(text[pos:s], add_special_tokens=False)
            ids += part
            labels += [IGNORE] * len(part)
        if e > s:
            part = tokenizer.encode(text[s:e], add_special_tokens=False)
            ids += part
            labels += part
        pos = max(pos, e)
    return Encoded(ids, labels)


def encode_row(
    row: dict[str, Any], fmt: str, tokenizer: Any, *, train_on_inputs: bool
) -> tuple[Encoded, bool]:
    """One row → (ids and labels, whether the prompt mask is exact)."""
    if fmt == "text":
        ids = list(tokenizer(str(row.get("text") or ""), add_special_tokens=True)["input_ids"])
        if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
            ids.append(int(tokenizer.eos_token_id))
        return Encoded(ids, list(ids)), True
    messages = to_messages(row, fmt)
    text, spans, exact = chat_spans(tokenizer, messages)
    if train_on_inputs:
        spans = [(0, len(text))]
    return _encode_spans(tokenizer, text, spans), exact


def ensure_chat_template(tokenizer: Any, fmt: str) -> str | None:
    """The template used (installing ChatML when a chat/instruction set meets none)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the default one is used
        template = template.get("default") or next(iter(template.values()), None)
    if template is None and fmt in ("chat", "instruction"):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        template = DEFAULT_CHAT_TEMPLATE
    return template if isinstance(template, str) else None


def prepare(
    rows: Sequence[dict[str, Any]],
    fmt: str,
    tokenizer: Any,
    *,
    sequence_len: int,
    train_on_inputs: bool = False,
    packing: bool = False,
) -> tuple[list[Encoded], PrepareStats]:
    """Encode, truncate (or drop) and optionally pack rows; returns examples and counts."""
    if fmt not in ("chat", "instruction", "text"):
        raise TrainingError(f"unknown data format {fmt!r} (expected chat, instruction or text)")
    stats = PrepareStats(rows=len(rows))
    out: list[Encoded] = []
    for i, row in enumerate(rows):
        enc, exact = encode_row(row, fmt, tokenizer, train_on_inputs=train_on_inputs)
        stats.rows_unmasked += 0 if exact else 1
        stats.max_row_tokens = max(stats.max_row_tokens, len(enc.input_ids))
        if len(enc.input_ids) > sequence_len:
            stats.rows_truncated += 1
            enc = Encoded(enc.input_ids[:sequence_len], enc.labels[:sequence_len])
        if not any(t != IGNORE for t in enc.labels[1:]):
            stats.rows_dropped += 1
            if len(stats.dropped_examples) < 20:
                stats.dropped_examples.append(i)
            continue
        out.append(enc)
    if packing:
        out = pack(out, sequence_len)
    stats.examples = len(out)
    stats.tokens = sum(len(e.input_ids) for e in out)
    stats.trainable_tokens = sum(sum(1 for t in e.labels if t != IGNORE) for e in out)
    return out, stats


def pack(examples: Sequence[Encoded], sequence_len: int) -> list[Encoded]:
    """Concatenate examples and cut into blocks of ``sequence_len`` (the last one may be short)."""
    ids: list[int] = []
    labels: list[int] = []
    for e in examples:
        ids += e.input_ids
        labels += e.labels
    blocks = []
    for start in range(0, len(ids), sequence_len):
        block = Encoded(ids[start : start + sequence_len], labels[start : start + sequence_len])
        if len(block.input_ids) > 1 and any(t != IGNORE for t in block.labels[1:]):
            blocks.append(block)
    return blocks


class Collator:
    """Pads a batch of :class:`Encoded`-like dicts to its longest row (right padding)."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, batch: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids, labels, mask = [], [], []
        for b in batch:
            n = len(b["input_ids"])
            pad = width - n
            ids.append(list(b["input_ids"]) + [self.pad_token_id] * pad)
            labels.append(list(b["labels"]) + [IGNORE] * pad)
            mask.append([1] * n + [0] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }


def as_records(examples: Sequence[Encoded]) -> list[dict[str, list[int]]]:
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
