#!/usr/bin/env python
"""Writes/s and reads of the evaluation results store: SQLite (embedded) and PostgreSQL (shared).

Stores N items the way an evaluation run does (``begin``, N ``add_item`` calls, ``finish``), then
reads them back (``get``, ``items`` pages of 100, ``list_evaluations``); reports items/s.

    python bench/evaluation_store.py --items 2000                   # SQLite in a temp dir
    python bench/evaluation_store.py --items 2000 --postgres        # + a pgserver PostgreSQL
    python bench/evaluation_store.py --items 2000 --module /tmp/old_store.py  # another version
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def load_store_class(module: str | None) -> Any:
    if module is None:
        from herald.evaluation.store import EvaluationStore

        return EvaluationStore
    spec = importlib.util.spec_from_file_location("bench_store", module)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.EvaluationStore


def run(store: Any, n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    store.begin("bench", suite="s", target="t", total=n)
    for i in range(n):
        store.add_item(
            "bench",
            f"s{i}",
            i,
            input={"messages": [{"role": "user", "content": f"question {i}"}]},
            output=f"answer {i}",
            scores={"reference.exact_match": float(i % 2)},
            errors={},
            latency_s=0.01,
        )
    store.finish("bench", status="completed", metrics={"m": {"value": 0.5}})
    t1 = time.perf_counter()
    for offset in range(0, n, 100):
        store.items("bench", offset=offset, limit=100)
    store.get("bench")
    store.list_evaluations(limit=100)
    t2 = time.perf_counter()
    return {"write_items_per_s": n / (t1 - t0), "read_items_per_s": n / (t2 - t1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--postgres", action="store_true", help="also run on a pgserver PostgreSQL")
    ap.add_argument("--module", help="a store.py file to load EvaluationStore from instead")
    args = ap.parse_args()
    cls = load_store_class(args.module)
    print(f"1-min load: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        store = cls(Path(tmp) / "evaluations.db")
        print("sqlite  ", {k: round(v) for k, v in run(store, args.items).items()})
        store.close()
        if args.postgres:
            import pgserver  # type: ignore[import-untyped]

            srv = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
            try:
                store = cls(srv.get_uri())
                print("postgres", {k: round(v) for k, v in run(store, args.items).items()})
                store.close()
            finally:
                srv.cleanup()


if __name__ == "__main__":
    main()
