"""The local store's persistence: snapshots, change-log pruning, damaged snapshots, restarts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from herald.errors import ConfigurationError
from herald.rag.vectorstores import Chunk
from herald.rag.vectorstores import local as local_mod
from herald.rag.vectorstores.local import LocalVectorStore

DIM = 16


def vec(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def chunks(start: int, n: int) -> list[Chunk]:
    return [
        Chunk(f"c{i}", f"d{i % 7}", f"text {i}", vec(i), {"i": i}) for i in range(start, start + n)
    ]


def test_snapshot_prune_and_reload(tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'vs'}"
    a = LocalVectorStore(url)
    a.create("c", DIM)
    a.write("c", chunks(0, 50))
    assert a.search("c", vec(3), 1)[0].id == "c3"
    b = LocalVectorStore(url)
    assert b.search("c", vec(4), 1)[0].id == "c4"  # b's index is at the current position
    a.flush()  # snapshot + prune the change log
    folder = tmp_path / "vs" / "c"
    snaps = list(folder.glob("index-*.usearch"))
    assert len(snaps) == 1
    a.write("c", chunks(50, 10))
    a.delete("c", ["d0"])
    a.flush()  # a newer snapshot replaces the old one; the log is pruned past b's position
    assert [p.name for p in folder.glob("index-*.usearch")] != [snaps[0].name]
    ids = {h.id for h in b.search("c", vec(55), 60)}  # b reloads the snapshot, then catches up
    assert "c55" in ids and not any(int(i[1:]) % 7 == 0 for i in ids)
    assert len(ids) == 60 - len([i for i in range(60) if i % 7 == 0])
    a.close()
    b.close()
    c = LocalVectorStore(url)  # a fresh process starts from the snapshot
    assert c.count("c") == 51 and c.search("c", vec(57), 1)[0].id == "c57"
    c.close()


def test_damaged_snapshot_is_rebuilt_from_sqlite(tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'vs'}"
    a = LocalVectorStore(url)
    a.create("c", DIM)
    a.write("c", chunks(0, 20))
    a.search("c", vec(1), 1)
    a.close()
    [snap] = (tmp_path / "vs" / "c").glob("index-*.usearch")
    snap.write_bytes(b"garbage")
    b = LocalVectorStore(url)
    assert b.search("c", vec(7), 1)[0].id == "c7"
    b.close()


def test_filtered_search_over_hnsw_with_many_candidates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_mod, "EXACT_BELOW", 10)  # force the HNSW path
    s = LocalVectorStore(f"local://{tmp_path / 'vs'}")
    s.create("c", DIM)
    s.write("c", chunks(0, 300))
    from herald.rag.filters import parse_filters

    conds = parse_filters({"i": {"$gte": 100}}, s.fields("c"))
    hits = s.search("c", vec(150), 5, conds)
    assert hits[0].id == "c150" and all(h.metadata["i"] >= 100 for h in hits) and len(hits) == 5
    s.close()


def test_urls_and_names_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="absolute"):
        LocalVectorStore("local://relative/path")
    s = LocalVectorStore(f"local://{tmp_path}")
    with pytest.raises(ConfigurationError, match="invalid collection name"):
        s.create("../escape", DIM)
