"""The folder a data set version is stored as, and reading it back.

    train.jsonl         normalised training rows, one canonical JSON object per line
    validation.jsonl    validation rows (only when the version has a validation split)
    dataset.json        name, format, fingerprint, rows, splits, PII counts, source, ...
    stats.json          statistics (rows, characters and token lengths, per split)

The artifact store adds its own ``manifest.json`` (file hashes) when the folder is stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from herald.datasets.errors import DatasetError
from herald.datasets.prepare import PreparedDataset, canonical_json

TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
META_FILE = "dataset.json"
STATS_FILE = "stats.json"


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(canonical_json(row) + "\n")


def write_dataset_dir(
    prepared: PreparedDataset,
    folder: Path,
    *,
    name: str,
    source: str,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> Path:
    """Write ``prepared`` as a data set folder (see the module docstring); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_jsonl(folder / TRAIN_FILE, prepared.train)
    if prepared.validation:
        _write_jsonl(folder / VALIDATION_FILE, prepared.validation)
    meta = {
        "name": name,
        "source": source,
        "description": description,
        "tags": tags or {},
        **prepared.manifest(),
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    (folder / STATS_FILE).write_text(json.dumps(prepared.stats, indent=1, sort_keys=True) + "\n")
    return folder


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise DatasetError(f"{path} line {n} is not JSON: {exc}") from None
    return rows


def read_dataset_dir(
    folder: Path,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(train rows, validation rows, dataset.json) of a stored data set folder."""
    if not (folder / TRAIN_FILE).is_file():
        raise DatasetError(f"{folder} is not a Herald data set folder (no {TRAIN_FILE})")
    meta: dict[str, Any] = {}
    if (folder / META_FILE).is_file():
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    validation = (
        _read_jsonl(folder / VALIDATION_FILE) if (folder / VALIDATION_FILE).is_file() else []
    )
    return _read_jsonl(folder / TRAIN_FILE), validation, meta
