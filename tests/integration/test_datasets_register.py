"""dataset.register → job (local subprocess) → artifact store + registry → dataset.registered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald import Herald
from herald.bus import EventQuery
from herald.messages.envelope import Envelope
from herald.settings import Settings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data" / "facts-chat.jsonl"


@pytest.fixture
async def herald_rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Herald]:
    """A Herald whose job subprocesses see the same home and database (through the env)."""
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.delenv("HERALD_ARTIFACTS_URL", raising=False)
    h = Herald(Settings(jobs={"lease_s": 5.0, "backoff_initial_s": 0.1}))
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def outcome(h: Herald, env: Envelope, timeout: float = 120) -> Envelope:
    """The flow's dataset.registered, or its final job.failed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        events = await h.log.query(
            EventQuery(
                types=["dataset.registered", "job.failed"],
                correlationid=env.correlationid,
                limit=100,
            )
        )
        final = [e for e in events if not e.data.get("will_retry")]
        if final:
            return final[0]
        await asyncio.sleep(0.2)
    raise AssertionError("no outcome within the timeout")


async def register(h: Herald, **data: object) -> Envelope:
    [env] = await h.publish(h.envelope("dataset.register", data))
    return await outcome(h, env)


async def test_register_then_same_content_is_the_same_version(herald_rt: Herald) -> None:
    h = herald_rt
    got = await register(h, name="facts", source=str(DATA), validation_fraction=0.1, seed=1)
    assert got.type == "dataset.registered", got.data
    d = got.data
    assert (d["name"], d["version"], d["uri"], d["created"]) == (
        "facts",
        1,
        "datasets:/facts/1",
        True,
    )
    assert d["format"] == "chat" and d["rows"] == 230
    assert d["splits"] == {"train": 207, "validation": 23}
    assert d["stats"]["tokenizer"] == "whitespace" and d["pii"]["email"] == 0

    # Stored as a verified folder in the artifact store; the registry records it.
    folder = h.artifacts.local_dir(h.artifacts.key_of(d["artifact_uri"]))
    assert {p.name for p in folder.iterdir()} >= {
        "train.jsonl",
        "validation.jsonl",
        "dataset.json",
        "stats.json",
    }
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["fingerprint"] == d["fingerprint"] and meta["source"] == str(DATA)
    dv = h.registry.get_dataset("facts")
    assert dv.fingerprint == d["fingerprint"] and dv.lineage["input_rows"] == 230

    # The fine-tuning side reads it back by name or URI.
    from herald.datasets import open_training_data

    data = open_training_data("datasets:/facts/1", h.registry)
    assert len(data.train) == 207 and len(data.validation) == 23
    assert (data.name, data.version, data.fingerprint) == ("facts", 1, d["fingerprint"])
    assert open_training_data("facts", h.registry).uri == "datasets:/facts/1"

    again = await register(h, name="facts", source=str(DATA), validation_fraction=0.1, seed=1)
    assert again.data["version"] == 1 and again.data["created"] is False

    other = await register(h, name="facts", source=str(DATA), validation_fraction=0.2, seed=1)
    assert other.data["version"] == 2 and other.data["created"] is True


async def test_invalid_rows_fail_the_job_once_with_row_errors(
    herald_rt: Herald, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"instruction": "2+3", "output": "5"}\n'
        '{"instruction": "", "output": "x"}\n'
        '{"instruction": "3+4", "output": 7}\n'
    )
    got = await register(herald_rt, name="bad", source=str(bad))
    assert got.type == "job.failed" and got.data["will_retry"] is False
    error = got.data["error"]
    assert "DatasetError: 2 problem(s)" in error
    assert "row 2, instruction: empty string" in error
    assert "row 3, output: expected a string, got int" in error
    assert got.data["attempt"] == 1
    with pytest.raises(Exception, match="bad"):
        herald_rt.registry.get_dataset("bad")  # nothing registered
