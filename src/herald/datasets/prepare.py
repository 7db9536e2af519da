"""Prepare a data set version from raw rows: validate, redact, de-duplicate, split, fingerprint.

Pure: rows in, a :class:`PreparedDataset` out, no I/O. The steps, in order:

1. detect the format (or check the requested one) and normalise every row; any invalid row fails
   the whole data set with a row-level report (first ``max_errors`` problems + the total count);
2. scan for PII (counts per kind) and, with ``redact_pii``, replace it with placeholders;
3. drop exact duplicates (same normalised row), keeping the first;
4. split train/validation deterministically from ``seed`` (rows keep their order in each split);
5. fingerprint what the version holds (see :func:`fingerprint`) and compute statistics.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from herald.datasets.errors import DatasetError, RowError, invalid_rows_error
from herald.datasets.formats import (
    FORMATS,
    OPTIONAL_COLUMNS,
    Format,
    detect_format,
    normalise_row,
)
from herald.datasets.pii import PII_KINDS, redact_text
from herald.datasets.stats import compute_stats

MAX_ERRORS = 50


@dataclass
class PreparedDataset:
    """A validated, normalised data set, ready to be written or trained on."""

    format: Format
    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    fingerprint: str
    stats: dict[str, Any]
    pii: dict[str, int]
    pii_redacted: bool
    duplicates_removed: int
    input_rows: int
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.train) + len(self.validation)

    @property
    def splits(self) -> dict[str, int]:
        out = {"train": len(self.train)}
        if self.validation:
            out["validation"] = len(self.validation)
        return out

    def manifest(self) -> dict[str, Any]:
        """What ``dataset.json`` in the artifact records (everything but the rows)."""
        return {
            "format": self.format,
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "splits": self.splits,
            "input_rows": self.input_rows,
            "duplicates_removed": self.duplicates_removed,
            "pii": self.pii,
            "pii_redacted": self.pii_redacted,
            "ignored_columns": self.ignored_columns,
        }


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text (not ASCII escapes): one spelling per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(fmt: str, train: list[dict[str, Any]], validation: list[dict[str, Any]]) -> str:
    """sha256 over the canonical JSON lines of what a version holds, in order.

    The hashed text is ``{"format":F,"herald_dataset":1}`` then one line per row
    ``{"row":{...},"split":"train"|"validation"}``, train rows first. Row order, the split and
    the normalised content count; column order, extra columns and file format do not.
    """
    h = hashlib.sha256()
    h.update((canonical_json({"format": fmt, "herald_dataset": 1}) + "\n").encode())
    for split, rows in (("train", train), ("validation", validation)):
        for row in rows:
            h.update((canonical_json({"row": row, "split": split}) + "\n").encode())
    return h.hexdigest()


def split_rows(
    rows: list[dict[str, Any]], validation_fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation): ``round(n * fraction)`` rows (at least 1) drawn by ``seed``."""
    if not 0.0 <= validation_fraction < 1.0:
        raise DatasetError(f"validation_fraction must be within [0, 1), got {validation_fraction}")
    n = len(rows)
    n_val = 0 if validation_fraction == 0 else max(1, round(n * validation_fraction))
    if n_val and n_val >= n:
        raise DatasetError(
            f"validation_fraction {validation_fraction} of {n} row(s) leaves no training rows; "
            "add rows or lower the fraction"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    chosen = set(order[:n_val])
    train = [r for i, r in enumerate(rows) if i not in chosen]
    validation = [r for i, r in enumerate(rows) if i in chosen]
    return train, validation


def _redact_row(
    row: dict[str, Any], counts: Counter[str], kinds: Sequence[str] | None = None
) -> dict[str, Any]:
    def red(text: str) -> str:
        out, c = redact_text(text, kinds)
        counts.update(c)
        return out

    if "messages" in row:
        msgs = []
        for m in row["messages"]:
            m2 = dict(m)
            if isinstance(m2.get("content"), str):
                m2["content"] = red(m2["content"])
            msgs.append(m2)
        return {"messages": msgs}
    return {k: red(v) if isinstance(v, str) else v for k, v in row.items()}


def prepare(
    rows: list[dict[str, Any]],
    *,
    columns: list[str] | None = None,
    row_numbers: list[int] | None = None,
    format: str = "auto",
    validation_fraction: float = 0.0,
    seed: int = 42,
    dedupe: bool = True,
    redact_pii: bool = False,
    pii_kinds: Sequence[str] | None = None,
    tokenizer: Any = None,
    source: str = "data set",
    max_errors: int = MAX_ERRORS,
) -> PreparedDataset:
    """Validate and prepare ``rows`` (dicts, as read from the file); see the module docstring."""
    if not rows:
        raise DatasetError(
            f"{source} has no rows: a data set needs at least one row with column 'messages' "
            "(chat), 'instruction' + 'output' (instruction) or 'text' (text)"
        )
    if columns is None:
        seen: dict[str, None] = {}
        for r in rows:
            seen.update(dict.fromkeys(r))
        columns = list(seen)
    fmt = detect_format(columns, format)
    numbers = row_numbers or list(range(1, len(rows) + 1))
    errors: list[RowError] = []
    total_errors = 0
    normalised: list[dict[str, Any]] = []
    for n, raw in zip(numbers, rows, strict=True):
        row_errors: list[RowError] = []
        if not isinstance(raw, dict):
            row_errors.append(RowError(n, "-", f"expected an object, got {type(raw).__name__}"))
            out = None
        else:
            out = normalise_row(raw, fmt, n, row_errors)
        if row_errors:
            total_errors += len(row_errors)
            errors.extend(row_errors[: max(0, max_errors - len(errors))])
        elif out is not None:
            normalised.append(out)
    if total_errors:
        raise invalid_rows_error(source, errors, total_errors)

    counts: Counter[str] = Counter()
    redacted = [_redact_row(r, counts, pii_kinds) for r in normalised]
    if redact_pii:
        normalised = redacted
    pii = {kind: counts.get(kind, 0) for kind in PII_KINDS}

    removed = 0
    if dedupe:
        unique: dict[str, dict[str, Any]] = {}
        for r in normalised:
            unique.setdefault(canonical_json(r), r)
        removed = len(normalised) - len(unique)
        normalised = list(unique.values())

    train, validation = split_rows(normalised, validation_fraction, seed)

    known = {*FORMATS[fmt], *OPTIONAL_COLUMNS[fmt]}
    return PreparedDataset(
        format=fmt,
        train=train,
        validation=validation,
        fingerprint=fingerprint(fmt, train, validation),
        stats=compute_stats(train, validation, tokenizer),
        pii=pii,
        pii_redacted=redact_pii,
        duplicates_removed=removed,
        input_rows=len(rows),
        ignored_columns=[c for c in columns if c not in known],
    )
