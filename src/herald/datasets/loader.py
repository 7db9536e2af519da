"""Read a data set file — JSON Lines, CSV or Parquet — from a local path or an fsspec URL.

The thin I/O edge of :mod:`herald.datasets`: it returns raw rows (dicts) with their row numbers
for error reports; :func:`herald.datasets.prepare.prepare` does the rest. Compression (``.gz``,
``.bz2``, ``.xz``, ``.zst``) is inferred from the name by fsspec.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from herald.datasets.errors import DatasetError, RowError, invalid_rows_error
from herald.security.egress import HTTP, EgressPolicy, check_source, fetch_bytes

FILE_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
MAX_BYTES = 2 << 30  # refuse to read more than 2 GiB into memory


@dataclass
class RawTable:
    """Rows as read, their 1-based row numbers (JSONL: line numbers) and the columns seen."""

    rows: list[Any]
    row_numbers: list[int]
    columns: list[str]
    file_format: str
    source: str


def is_url(source: str) -> bool:
    scheme = urlsplit(source).scheme
    return len(scheme) > 1 and "://" in source  # "C:\\data" is a Windows drive, not a scheme


def file_format(source: str, explicit: str | None = None) -> str:
    """jsonl | json | csv | tsv | parquet, from ``explicit`` or the file name's suffix."""
    if explicit:
        if explicit not in set(FILE_FORMATS.values()):
            raise DatasetError(
                f"unknown file format {explicit!r}: use one of jsonl, json, csv, tsv, parquet"
            )
        return explicit
    name = unquote(urlsplit(source).path if is_url(source) else source).lower()
    for comp in COMPRESSIONS:
        if name.endswith(comp):
            name = name[: -len(comp)]
    suffix = os.path.splitext(name)[1]
    if suffix not in FILE_FORMATS:
        raise DatasetError(
            f"cannot tell the file format of {source!r} from its suffix {suffix or '(none)'}: "
            f"use {', '.join(sorted(FILE_FORMATS))} (optionally compressed: "
            f"{', '.join(COMPRESSIONS)})"
        )
    return FILE_FORMATS[suffix]


def _fetch(source: str, egress: Any) -> bytes:
    """An http(s) data set through the egress policy (every address and redirect checked)."""
    import fsspec  # type: ignore[import-untyped]

    try:
        raw = fetch_bytes(source, egress, MAX_BYTES)
    except httpx.HTTPError as exc:
        raise DatasetError(f"cannot read {source!r}: {exc}") from None
    comp = fsspec.utils.infer_compression(urlsplit(source).path)
    if comp is None:
        return raw
    with fsspec.compression.compr[comp](io.BytesIO(raw), mode="rb") as f:
        data: bytes = f.read(MAX_BYTES + 1)
    return data


def _read_bytes(source: str, egress: Any = None) -> bytes:
    import fsspec

    if is_url(source):  # a caller's URL: no protocol chains, no private addresses (403)
        policy = EgressPolicy.of(egress)  # settings or a policy; the strict default without
        if check_source(source, policy) in HTTP:
            fetched = _fetch(source, policy)
            if len(fetched) > MAX_BYTES:
                raise DatasetError(f"{source} is larger than {MAX_BYTES >> 30} GiB")
            return fetched
    if not is_url(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise DatasetError(f"data set file {str(path)!r} does not exist")
        if not path.is_file():
            raise DatasetError(
                f"{str(path)!r} is not a file (pass a .jsonl, .csv or .parquet file)"
            )
        source = str(path)
    try:
        with fsspec.open(source, "rb", compression="infer") as f:
            data: bytes = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise DatasetError(f"data set file {source!r} does not exist") from None
    except ImportError as exc:
        raise DatasetError(
            f"cannot read {source!r}: {exc} (install the fsspec backend for this URL scheme, "
            'e.g. pip install "herald[s3]")'
        ) from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {source!r}: {exc}") from None
    if len(data) > MAX_BYTES:
        raise DatasetError(f"{source} is larger than {MAX_BYTES >> 30} GiB (the in-memory limit)")
    return data


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{source} is not UTF-8 text: {exc}") from None


def _columns(rows: list[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        if isinstance(r, dict):
            seen.update(dict.fromkeys(r))
    return list(seen)


def parse_jsonl(text: str, source: str) -> RawTable:
    rows: list[Any] = []
    numbers: list[int] = []
    bad: list[RowError] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            bad.append(RowError(n, "-", f"invalid JSON ({exc})"))
            continue
        numbers.append(n)
    if bad:
        raise invalid_rows_error(source, bad, len(bad))
    return RawTable(rows, numbers, _columns(rows), "jsonl", source)


def parse_json(text: str, source: str) -> RawTable:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        # A .json file may be JSON Lines in disguise.
        if text.lstrip().startswith("{"):
            table = parse_jsonl(text, source)
            table.file_format = "json"
            return table
        raise DatasetError(f"{source} is not valid JSON: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if not isinstance(doc, list):
        raise DatasetError(
            f"{source} must hold a JSON array of rows (or one JSON object per line), "
            f"got {type(doc).__name__}"
        )
    return RawTable(doc, list(range(1, len(doc) + 1)), _columns(doc), "json", source)


def parse_csv(text: str, source: str, delimiter: str = ",") -> RawTable:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [c for c in (reader.fieldnames or []) if c is not None]
    if not columns:
        raise DatasetError(f"{source} has no header row: the first row must name the columns")
    rows: list[Any] = []
    numbers: list[int] = []
    for i, row in enumerate(reader, start=1):
        if None in row:  # more cells than header columns
            extra = len(row[None])
            problem = f"{len(columns) + extra} cells but {len(columns)} columns in the header"
            raise invalid_rows_error(source, [RowError(i, "-", problem)], 1)
        rows.append({k: (v if v != "" else None) for k, v in row.items()})
        numbers.append(i)
    return RawTable(rows, numbers, columns, "csv" if delimiter == "," else "tsv", source)


def parse_parquet(data: bytes, source: str) -> RawTable:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{source} is not a readable Parquet file: {exc}") from None
    rows = table.to_pylist()
    return RawTable(
        rows, list(range(1, len(rows) + 1)), list(table.column_names), "parquet", source
    )


def read_table(source: str, *, file_format_hint: str | None = None, egress: Any = None) -> RawTable:
    """Read ``source`` (a local path or an fsspec URL) into raw rows."""
    if not isinstance(source, str) or not source.strip():
        raise DatasetError("data set source must be a non-empty path or URL")
    if "\x00" in source:
        raise DatasetError("data set source contains a NUL byte")
    kind = file_format(source, file_format_hint)
    data = _read_bytes(source, egress)
    if kind == "parquet":
        return parse_parquet(data, source)
    text = _decode(data, source)
    if kind == "jsonl":
        return parse_jsonl(text, source)
    if kind == "json":
        return parse_json(text, source)
    return parse_csv(text, source, "\t" if kind == "tsv" else ",")
