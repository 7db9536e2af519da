"""Evaluation results: one SQLite file under ``$HERALD_HOME/evaluations/``.

``evaluations`` holds one row per evaluation (suite, target, resolved model version, status,
aggregates); ``items`` one row per (evaluation, sample) with the input, the output, the scores
and the errors. Items are written as they complete, so a killed evaluation resumes by skipping
the samples already stored. Comparisons pair items by sample id (paired bootstrap).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from herald.errors import Conflict, NotFound
from herald.evaluation.stats import paired_bootstrap

SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
  id TEXT PRIMARY KEY,
  suite TEXT NOT NULL,
  suite_path TEXT,
  suite_fingerprint TEXT,
  target TEXT NOT NULL,
  model TEXT,
  model_version TEXT,
  status TEXT NOT NULL,
  created_at REAL NOT NULL,
  finished_at REAL,
  total INTEGER DEFAULT 0,
  options TEXT DEFAULT '{}',
  metrics TEXT DEFAULT '{}',
  higher_is_better TEXT DEFAULT '{}',
  thresholds TEXT DEFAULT '{}',
  passed INTEGER,
  primary_metric TEXT,
  correlationid TEXT,
  job_id TEXT,
  step INTEGER,
  error TEXT
);
CREATE INDEX IF NOT EXISTS evaluations_suite ON evaluations(suite, status);
CREATE TABLE IF NOT EXISTS items (
  evaluation_id TEXT NOT NULL,
  sample_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  input TEXT,
  output TEXT,
  scores TEXT NOT NULL DEFAULT '{}',
  errors TEXT NOT NULL DEFAULT '{}',
  latency_s REAL,
  created_at REAL NOT NULL,
  PRIMARY KEY (evaluation_id, sample_id)
);
"""
JSON_COLS = ("options", "metrics", "higher_is_better", "thresholds")


class EvaluationStore:
    """Thread-safe access to the results database (one connection per thread)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(SCHEMA)

    @classmethod
    def from_home(cls, home: Path) -> EvaluationStore:
        return cls(home / "evaluations" / "evaluations.db")

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # writes -------------------------------------------------------------------------------
    def begin(self, evaluation_id: str, **fields: Any) -> tuple[dict[str, Any], set[str]]:
        """Create (or reopen, to resume) an evaluation; returns it and the sample ids done."""
        with self._conn() as c:
            row = c.execute("SELECT * FROM evaluations WHERE id = ?", (evaluation_id,)).fetchone()
            if row is None:
                cols = {"id": evaluation_id, "status": "running", "created_at": time.time()}
                cols |= {k: _enc(k, v) for k, v in fields.items()}
                c.execute(
                    f"INSERT INTO evaluations ({', '.join(cols)}) "
                    f"VALUES ({', '.join('?' for _ in cols)})",
                    tuple(cols.values()),
                )
            else:
                if row["suite"] != fields.get("suite", row["suite"]) or (
                    fields.get("suite_fingerprint")
                    and row["suite_fingerprint"] != fields["suite_fingerprint"]
                ):
                    raise Conflict(
                        f"evaluation {evaluation_id} exists for another suite or data set "
                        f"({row['suite']}); use a new evaluation id"
                    )
                c.execute(
                    "UPDATE evaluations SET status='running', error=NULL, job_id=? WHERE id=?",
                    (fields.get("job_id") or row["job_id"], evaluation_id),
                )
            done = {
                r[0]
                for r in c.execute(
                    "SELECT sample_id FROM items WHERE evaluation_id = ?", (evaluation_id,)
                )
            }
        return self.get(evaluation_id), done

    def add_item(
        self,
        evaluation_id: str,
        sample_id: str,
        idx: int,
        *,
        input: Any,
        output: str | None,
        scores: dict[str, float],
        errors: dict[str, Any],
        latency_s: float | None = None,
    ) -> None:
        """Store one item (merging scores/errors into an existing row of the same sample)."""
        with self._conn() as c:
            row = c.execute(
                "SELECT scores, errors, output, input, idx FROM items "
                "WHERE evaluation_id=? AND sample_id=?",
                (evaluation_id, sample_id),
            ).fetchone()
            if row is not None:  # a later engine (batch) adds to the item; the first wins ties
                scores = {**json.loads(row["scores"]), **scores}
                errors = {**json.loads(row["errors"]), **errors}
                old_input = json.loads(row["input"]) if row["input"] else None
                if isinstance(old_input, dict) and isinstance(input, dict):
                    input = {**input, **old_input}
                elif old_input is not None:
                    input = old_input
                output = row["output"] if row["output"] is not None else output
                idx = row["idx"] if idx < 0 <= row["idx"] else idx
            c.execute(
                "INSERT OR REPLACE INTO items (evaluation_id, sample_id, idx, input, output, "
                "scores, errors, latency_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    evaluation_id,
                    sample_id,
                    idx,
                    json.dumps(input, default=str),
                    output,
                    json.dumps(scores),
                    json.dumps(errors, default=str),
                    latency_s,
                    time.time(),
                ),
            )

    def finish(self, evaluation_id: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("finished_at", time.time())
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._conn() as c:
            c.execute(
                f"UPDATE evaluations SET {sets} WHERE id = ?",
                (*(_enc(k, v) for k, v in fields.items()), evaluation_id),
            )
        return self.get(evaluation_id)

    # reads --------------------------------------------------------------------------------
    def get(self, evaluation_id: str) -> dict[str, Any]:
        row = (
            self._connection()
            .execute("SELECT * FROM evaluations WHERE id = ?", (evaluation_id,))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"evaluation {evaluation_id!r} not found")
        out = _row(row)
        counts = (
            self._connection()
            .execute(
                "SELECT COUNT(*), SUM(errors != '{}') FROM items WHERE evaluation_id = ?",
                (evaluation_id,),
            )
            .fetchone()
        )
        out["done"] = counts[0] or 0
        out["failed_items"] = counts[1] or 0
        return out

    def list_evaluations(
        self,
        *,
        suite: str | None = None,
        target: str | None = None,
        model_version: str | None = None,
        status: str | None = None,
        limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first by (created_at, id); ``before`` continues after that key (keyset
        paging: rows written meanwhile are newer, so pages never repeat or skip a row)."""
        where: list[str] = []
        args: list[Any] = []
        for col, value in (
            ("suite", suite),
            ("target", target),
            ("model_version", model_version),
            ("status", status),
        ):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        if before is not None:
            where.append("created_at <= ? AND (created_at < ? OR id < ?)")
            args += [before[0], before[0], before[1]]
        sql = "SELECT * FROM evaluations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        return [_row(r) for r in self._connection().execute(sql, (*args, limit))]

    def items(
        self,
        evaluation_id: str,
        *,
        failed: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        self.get(evaluation_id)
        sql = "SELECT * FROM items WHERE evaluation_id = ?"
        if failed is True:
            sql += " AND errors != '{}'"
        elif failed is False:
            sql += " AND errors = '{}'"
        sql += " ORDER BY idx LIMIT ? OFFSET ?"
        rows = self._connection().execute(sql, (evaluation_id, limit, offset))
        return [
            {
                "sample_id": r["sample_id"],
                "index": r["idx"],
                "input": json.loads(r["input"]) if r["input"] else None,
                "output": r["output"],
                "scores": {k: v for k, v in json.loads(r["scores"]).items()},
                "errors": json.loads(r["errors"]),
                "latency_s": r["latency_s"],
            }
            for r in rows
        ]

    def all_scores(self, evaluation_id: str) -> dict[str, tuple[dict[str, float], dict[str, Any]]]:
        """sample id → (scores, errors) for every stored item."""
        rows = self._connection().execute(
            "SELECT sample_id, scores, errors FROM items WHERE evaluation_id = ? ORDER BY idx",
            (evaluation_id,),
        )
        return {r[0]: (json.loads(r[1]), json.loads(r[2])) for r in rows}

    # comparisons --------------------------------------------------------------------------
    def compare(
        self, ids: list[str], *, metrics: list[str] | None = None, seed: int = 0
    ) -> dict[str, Any]:
        """Each evaluation against the first (the baseline): paired bootstrap per metric over
        the samples both scored."""
        if len(ids) < 2:
            raise Conflict("compare needs at least two evaluation ids")
        evals = [self.get(i) for i in ids]
        suites = {e["suite"] for e in evals}
        if len(suites) > 1:
            raise Conflict(f"evaluations are of different suites ({', '.join(sorted(suites))})")
        base = evals[0]
        names = metrics or [k for k in base["metrics"] if not k.startswith("_")]
        base_scores = self.all_scores(base["id"])
        out: list[dict[str, Any]] = []
        for other in evals[1:]:
            other_scores = self.all_scores(other["id"])
            per_metric: dict[str, Any] = {}
            for metric in names:
                shared = [
                    sid
                    for sid, (s, _) in base_scores.items()
                    if metric in s and metric in other_scores.get(sid, ({}, {}))[0]
                ]
                if not shared:
                    per_metric[metric] = None
                    continue
                a = [base_scores[s][0][metric] for s in shared]
                b = [other_scores[s][0][metric] for s in shared]
                res = paired_bootstrap(a, b, seed=seed).as_dict()
                higher = base.get("higher_is_better", {}).get(metric, True)
                res["higher_is_better"] = higher
                res["better"] = res["b_better"] if higher else res["a_better"]
                res["worse"] = res["a_better"] if higher else res["b_better"]
                per_metric[metric] = res
            out.append({"baseline": base["id"], "candidate": other["id"], "metrics": per_metric})
        return {"suite": base["suite"], "evaluations": evals, "comparisons": out}

    def leaderboard(self, suite: str, *, metric: str | None = None) -> dict[str, Any]:
        """The latest completed evaluation of each target on ``suite``, best first."""
        rows = self.list_evaluations(suite=suite, status="completed", limit=10_000)
        latest: dict[str, dict[str, Any]] = {}
        for r in rows:  # newest first
            key = r.get("model_version") or r["target"]
            latest.setdefault(key, r)
        if not latest:
            raise NotFound(f"no completed evaluation of suite {suite!r}")
        first = next(iter(latest.values()))
        metric = metric or first.get("primary_metric") or next(iter(first["metrics"]), None)
        higher = first.get("higher_is_better", {}).get(metric, True)

        def rank(r: dict[str, Any]) -> float:
            v = (r["metrics"].get(metric) or {}).get("value")
            if v is None:
                return float("inf")
            return float(-v if higher else v)

        ranked = sorted(latest.values(), key=rank)
        return {
            "suite": suite,
            "metric": metric,
            "higher_is_better": higher,
            "data": [
                {
                    "rank": i + 1,
                    "target": r["target"],
                    "model_version": r.get("model_version"),
                    "evaluation_id": r["id"],
                    "score": r["metrics"].get(metric),
                    "passed": r.get("passed"),
                    "finished_at": r.get("finished_at"),
                }
                for i, r in enumerate(ranked)
            ],
        }


def _enc(key: str, value: Any) -> Any:
    if key in JSON_COLS:
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return int(value)
    return value


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for k in JSON_COLS:
        out[k] = json.loads(out[k]) if out.get(k) else {}
    if out.get("passed") is not None:
        out["passed"] = bool(out["passed"])
    return out
