"""Statistics of a prepared data set: rows per split, characters and token lengths per row."""

from __future__ import annotations

import math
from typing import Any

from herald.datasets.formats import row_text


def summary(values: list[int]) -> dict[str, float]:
    """min, mean, p50, p95, max (percentiles by linear interpolation); zeros when empty."""
    if not values:
        return {"min": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0}
    s = sorted(values)

    def pct(p: float) -> float:
        k = (len(s) - 1) * p
        lo, hi = math.floor(k), math.ceil(k)
        return float(s[lo] + (s[hi] - s[lo]) * (k - lo))

    return {
        "min": s[0],
        "mean": round(sum(s) / len(s), 2),
        "p50": round(pct(0.5), 2),
        "p95": round(pct(0.95), 2),
        "max": s[-1],
    }


def token_counter(tokenizer: Any) -> tuple[str, Any]:
    """(name of the counting method, text → token count)."""
    if tokenizer is None:
        return "whitespace", lambda text: len(text.split())
    name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    encode = getattr(tokenizer, "encode", None)
    if encode is None:
        raise TypeError("tokenizer must have an encode(text) method (a Hugging Face tokenizer)")

    def count(text: str) -> int:
        try:
            return len(encode(text, add_special_tokens=False))
        except TypeError:
            return len(encode(text))

    return name, count


def compute_stats(
    train: list[dict[str, Any]], validation: list[dict[str, Any]], tokenizer: Any = None
) -> dict[str, Any]:
    """Rows and length summaries over all rows and per split.

    Token lengths come from ``tokenizer`` (its ``encode``, no special tokens) when given, else
    from whitespace splitting; ``stats["tokenizer"]`` says which ("whitespace" or its name).
    Lengths are of the row's text (message contents joined; instruction, input and output
    joined), not of a rendered chat template.
    """
    name, count = token_counter(tokenizer)

    def part(rows: list[dict[str, Any]]) -> dict[str, Any]:
        texts = [row_text(r) for r in rows]
        tokens = [count(t) for t in texts]
        return {
            "rows": len(rows),
            "characters": summary([len(t) for t in texts]),
            "tokens": summary(tokens),
            "total_tokens": sum(tokens),
        }

    out: dict[str, Any] = {"tokenizer": name, **part(train + validation)}
    out["splits"] = {"train": part(train)}
    if validation:
        out["splits"]["validation"] = part(validation)
    return out
