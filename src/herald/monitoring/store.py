"""Monitoring state in one SQLite file (``$HERALD_HOME/monitoring/state.db``): user feedback,
rule cooldowns, guardrail trigger counts, retraining runs and pending retraining plans."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
  id TEXT PRIMARY KEY, response_id TEXT NOT NULL, score REAL NOT NULL, thumbs TEXT,
  comment TEXT NOT NULL DEFAULT '', model TEXT, user TEXT, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS feedback_response ON feedback(response_id);
CREATE INDEX IF NOT EXISTS feedback_time ON feedback(time);
CREATE TABLE IF NOT EXISTS rule_state (
  rule TEXT NOT NULL, model TEXT NOT NULL, last_fired REAL NOT NULL, PRIMARY KEY (rule, model));
CREATE TABLE IF NOT EXISTS guardrail (
  time REAL NOT NULL, model TEXT NOT NULL, count INTEGER NOT NULL, requests INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS retrain_runs (
  key TEXT PRIMARY KEY, model TEXT NOT NULL, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS retrain_plans (
  dataset TEXT PRIMARY KEY, plan TEXT NOT NULL, time REAL NOT NULL);
"""


class MonitoringStore:
    """Small, thread-safe SQLite store; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            return list(self._db.execute(sql, args).fetchall())

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # feedback -----------------------------------------------------------------------------
    def add_feedback(
        self,
        response_id: str,
        score: float,
        *,
        thumbs: str | None = None,
        comment: str = "",
        model: str | None = None,
        user: str | None = None,
        at: float | None = None,
    ) -> dict[str, Any]:
        row = {
            "id": "fb_" + uuid.uuid4().hex,
            "response_id": response_id,
            "score": score,
            "thumbs": thumbs,
            "comment": comment,
            "model": model,
            "user": user,
            "time": time.time() if at is None else at,
        }
        self._exec(
            "INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?)",
            tuple(row.values()),
        )
        return row

    def feedback(self, since: float = 0.0, until: float | None = None) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT * FROM feedback WHERE time >= ? AND time < ? ORDER BY time",
            (since, until if until is not None else float("inf")),
        )
        return [dict(r) for r in rows]

    def scores_by_response(self) -> dict[str, float]:
        """Latest score per response id."""
        rows = self._rows("SELECT response_id, score FROM feedback ORDER BY time")
        return {r["response_id"]: float(r["score"]) for r in rows}

    # rule cooldowns -----------------------------------------------------------------------
    def last_fired(self, rule: str, model: str) -> float | None:
        rows = self._rows(
            "SELECT last_fired FROM rule_state WHERE rule = ? AND model = ?", (rule, model)
        )
        return float(rows[0]["last_fired"]) if rows else None

    def set_fired(self, rule: str, model: str, at: float) -> None:
        self._exec(
            "INSERT INTO rule_state VALUES (?,?,?) ON CONFLICT(rule, model) "
            "DO UPDATE SET last_fired = excluded.last_fired",
            (rule, model, at),
        )

    # guardrails ---------------------------------------------------------------------------
    def add_guardrail(self, model: str, count: int, requests: int, at: float) -> None:
        self._exec("INSERT INTO guardrail VALUES (?,?,?,?)", (at, model, count, requests))

    def guardrail_counts(self, since: float, until: float) -> dict[str, int]:
        rows = self._rows(
            "SELECT model, SUM(count) AS n FROM guardrail WHERE time >= ? AND time < ? "
            "GROUP BY model",
            (since, until),
        )
        return {r["model"]: int(r["n"]) for r in rows}

    # retraining ---------------------------------------------------------------------------
    def retrain_runs_since(self, model: str, since: float) -> list[float]:
        rows = self._rows(
            "SELECT time FROM retrain_runs WHERE model = ? AND time >= ? ORDER BY time",
            (model, since),
        )
        return [float(r["time"]) for r in rows]

    def add_retrain_run(self, key: str, model: str, at: float) -> bool:
        """Record a run once per key (a redelivered trigger does not count twice)."""
        return (
            self._exec(
                "INSERT INTO retrain_runs VALUES (?,?,?) ON CONFLICT(key) DO NOTHING",
                (key, model, at),
            )
            > 0
        )

    def save_plan(self, dataset: str, plan: dict[str, Any]) -> None:
        self._exec(
            "INSERT INTO retrain_plans VALUES (?,?,?) ON CONFLICT(dataset) "
            "DO UPDATE SET plan = excluded.plan, time = excluded.time",
            (dataset, json.dumps(plan), time.time()),
        )

    def plan(self, dataset: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT plan FROM retrain_plans WHERE dataset = ?", (dataset,))
        return json.loads(rows[0]["plan"]) if rows else None
