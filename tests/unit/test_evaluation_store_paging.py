"""Keyset paging of the evaluation results store (newest first by (created_at, id))."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

from herald.evaluation.store import EvaluationStore


def test_list_evaluations_pages_without_repeats_or_skips(tmp_path: Path) -> None:
    store = EvaluationStore(tmp_path / "ev.db")
    # three share one timestamp, so the id must break the tie
    stamps = [100.0, 100.5, 100.5, 100.5, 101.25, 102.0, 103.0]
    for i, t in enumerate(stamps):
        with mock.patch("herald.evaluation.store.time.time", return_value=t):
            store.begin(f"ev-{i}", suite="s", target="t")
    everything = store.list_evaluations()
    newest_first = [e["id"] for e in everything]
    assert newest_first == ["ev-6", "ev-5", "ev-4", "ev-3", "ev-2", "ev-1", "ev-0"]
    for limit in (1, 2, 3, 7):
        snapshot = [e["id"] for e in store.list_evaluations(suite="s")]
        assert snapshot[-7:] == newest_first
        walked: list[str] = []
        before = None
        while True:
            rows = store.list_evaluations(limit=limit, before=before, suite="s")
            walked += [e["id"] for e in rows]
            if len(rows) < limit:
                break
            before = (rows[-1]["created_at"], rows[-1]["id"])
            store.begin(f"late-{limit}-{len(walked)}", suite="s", target="t")  # newer
        assert walked == snapshot, limit
    # filters combine with the cursor
    store.begin("other", suite="x", target="t")
    assert store.list_evaluations(suite="x", before=(1e12, "")) != []
    assert store.list_evaluations(suite="x", before=(0.0, "")) == []
    store.close()
