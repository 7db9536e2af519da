"""Reading JSONL, JSON, CSV and Parquet from paths and fsspec URLs; open_training_data on files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from herald.datasets import DatasetError, open_training_data, prepare, read_table
from herald.datasets.pii import PII_KINDS
from herald.datasets.training import looks_like_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "data"
ROWS = [
    {"instruction": "What is 2 + 3?", "input": "", "output": "5"},
    {"instruction": "Capital of France?", "input": "", "output": "Paris"},
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_formats_give_the_same_rows_and_fingerprint(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = [write_jsonl(tmp_path / "d.jsonl", ROWS)]
    (tmp_path / "d.json").write_text(json.dumps(ROWS))
    paths.append(tmp_path / "d.json")
    (tmp_path / "d.csv").write_text(
        "instruction,input,output\nWhat is 2 + 3?,,5\nCapital of France?,,Paris\n"
    )
    paths.append(tmp_path / "d.csv")
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet")
    paths.append(tmp_path / "d.parquet")
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in ROWS))
    paths.append(tmp_path / "d.jsonl.gz")
    prints = {open_training_data(str(p)).fingerprint for p in paths}
    assert len(prints) == 1
    data = open_training_data(str(paths[2]))
    assert data.format == "instruction" and data.train == ROWS
    assert data.name == "d" and data.version is None and data.uri == str(paths[2])


def test_jsonl_row_numbers_are_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "a"}\n\n{"text": "b"}\n{"text": 3}\n')
    table = read_table(str(p))
    assert table.row_numbers == [1, 3, 4] and table.columns == ["text"]
    with pytest.raises(DatasetError, match="row 4, text: expected a string, got int"):
        open_training_data(str(p))


def test_invalid_json_lines_are_row_errors(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "a"}\n{"text": \n')
    with pytest.raises(DatasetError, match=r"row 2, -: invalid JSON") as e:
        read_table(str(p))
    assert e.value.details["error_count"] == 1


def test_csv_with_too_many_cells(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("text\na\nb,c\n")
    with pytest.raises(DatasetError, match="row 2, -: 2 cells but 1 columns"):
        read_table(str(p))


def test_csv_chat_messages_are_json_cells(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello, you"}]
    import csv

    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["messages"])
        w.writerow([json.dumps(msgs)])
    assert open_training_data(str(p)).train == [{"messages": msgs}]


def test_missing_file_unknown_suffix_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_table(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DatasetError, match=r"suffix \.txt"):
        read_table(str(tmp_path / "x.txt"))
    bad = tmp_path / "latin.jsonl"
    bad.write_bytes('{"text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_table(str(bad))
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(DatasetError, match="is not a file"):
        read_table(str(tmp_path / "dir.jsonl"))


def test_fsspec_memory_url() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    with fs.open("/herald-test/d.jsonl", "w") as f:
        f.write('{"text": "hello"}\n')
    try:
        data = open_training_data("memory://herald-test/d.jsonl")
        assert data.train == [{"text": "hello"}] and data.uri == "memory://herald-test/d.jsonl"
        with pytest.raises(DatasetError, match="does not exist"):
            read_table("memory://herald-test/missing.jsonl")
    finally:
        fs.rm("/herald-test", recursive=True)


def test_validation_fraction_for_files() -> None:
    data = open_training_data(str(EXAMPLES / "facts-chat.jsonl"), validation_fraction=0.1, seed=3)
    assert data.format == "chat" and len(data.train) + len(data.validation) >= 200
    assert len(data.validation) == round(0.1 * (len(data.train) + len(data.validation)))


def test_shipped_examples_are_valid_and_identical_in_content() -> None:
    chat = open_training_data(str(EXAMPLES / "facts-chat.jsonl"))
    inst = open_training_data(str(EXAMPLES / "facts-instruction.csv"))
    assert len(chat.train) == len(inst.train) >= 200
    table = read_table(str(EXAMPLES / "facts-chat.jsonl"))
    assert prepare(table.rows).pii == dict.fromkeys(PII_KINDS, 0)  # no personal data shipped
    first = chat.train[0]["messages"]
    assert inst.train[0]["instruction"] == first[0]["content"]


def test_file_or_registered_name() -> None:
    assert looks_like_file("data/train.jsonl") and looks_like_file("s3://b/k.parquet")
    assert looks_like_file("train.csv") and looks_like_file("./x")
    assert not looks_like_file("my-dataset") and not looks_like_file("datasets:/my-dataset/2")
