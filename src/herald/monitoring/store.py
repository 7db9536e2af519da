"""Monitoring state: user feedback, rule cooldowns, guardrail trigger counts, retraining runs
and pending retraining plans.

Embedded it lives in one SQLite file (``$HERALD_HOME/monitoring/state.db``); when Herald runs on
PostgreSQL it lives in that shared database (tables ``herald_feedback``, ``herald_rule_state``,
``herald_guardrail_counts``, ``herald_retrain_runs``, ``herald_retrain_plans``), so feedback
posted to a ``herald serve`` pod is seen by the monitors of every worker (see
:mod:`herald.store.shared`).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from herald.store.shared import StateStore

METADATA = MetaData()
feedback_t = Table(
    "herald_feedback",
    METADATA,
    Column("id", Text, primary_key=True),
    Column("response_id", Text, nullable=False),
    Column("score", Float, nullable=False),
    Column("thumbs", Text),
    Column("comment", Text, nullable=False, server_default=""),
    Column("model", Text),
    Column("user", Text),
    Column("time", Float, nullable=False),
    Index("herald_feedback_response", "response_id"),
    Index("herald_feedback_time", "time"),
)
rule_state_t = Table(
    "herald_rule_state",
    METADATA,
    Column("rule", Text, primary_key=True),
    Column("model", Text, primary_key=True),
    Column("last_fired", Float, nullable=False),
)
guardrail_t = Table(
    "herald_guardrail_counts",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("model", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("requests", Integer, nullable=False),
    Index("herald_guardrail_counts_time", "time"),
)
retrain_runs_t = Table(
    "herald_retrain_runs",
    METADATA,
    Column("key", Text, primary_key=True),
    Column("model", Text, nullable=False),
    Column("time", Float, nullable=False),
    Index("herald_retrain_runs_model_time", "model", "time"),
)
retrain_plans_t = Table(
    "herald_retrain_plans",
    METADATA,
    Column("dataset", Text, primary_key=True),
    Column("plan", Text, nullable=False),
    Column("time", Float, nullable=False),
)


class MonitoringStore(StateStore):
    """Thread- and process-safe store; every method is one short transaction.

    ``target``: a SQLite file (``Path``) or a database URL (``sqlite:///…``,
    ``postgresql://…``); :meth:`from_settings` picks the one every Herald role shares
    (``$HERALD_HOME/monitoring/state.db`` embedded)."""

    metadata = METADATA
    sqlite_file = "monitoring/state.db"
    what = "monitoring state database"
    # tables of the SQLite file before they moved to shared names (copied once, then dropped)
    legacy_tables = {
        "feedback": feedback_t,
        "rule_state": rule_state_t,
        "guardrail": guardrail_t,
        "retrain_runs": retrain_runs_t,
        "retrain_plans": retrain_plans_t,
    }

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can take ON CONFLICT clauses on this dialect."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _rows(self, stmt: Any) -> list[dict[str, Any]]:
        with self._read() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

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
        with self._tx() as conn:
            conn.execute(feedback_t.insert().values(**row))
        return row

    def feedback(self, since: float = 0.0, until: float | None = None) -> list[dict[str, Any]]:
        q = select(feedback_t).where(feedback_t.c.time >= since)
        if until is not None:
            q = q.where(feedback_t.c.time < until)
        return self._rows(q.order_by(feedback_t.c.time, feedback_t.c.id))

    def scores_by_response(self) -> dict[str, float]:
        """Latest score per response id."""
        rows = self._rows(
            select(feedback_t.c.response_id, feedback_t.c.score).order_by(feedback_t.c.time)
        )
        return {r["response_id"]: float(r["score"]) for r in rows}

    # rule cooldowns -----------------------------------------------------------------------
    def last_fired(self, rule: str, model: str) -> float | None:
        rows = self._rows(
            select(rule_state_t.c.last_fired).where(
                rule_state_t.c.rule == rule, rule_state_t.c.model == model
            )
        )
        return float(rows[0]["last_fired"]) if rows else None

    def set_fired(self, rule: str, model: str, at: float) -> None:
        ins = self._insert(rule_state_t).values(rule=rule, model=model, last_fired=at)
        with self._tx() as conn:
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["rule", "model"], set_={"last_fired": ins.excluded.last_fired}
                )
            )

    # guardrails ---------------------------------------------------------------------------
    def add_guardrail(self, model: str, count: int, requests: int, at: float) -> None:
        with self._tx() as conn:
            conn.execute(
                guardrail_t.insert().values(time=at, model=model, count=count, requests=requests)
            )

    def guardrail_counts(self, since: float, until: float) -> dict[str, int]:
        c = guardrail_t.c
        rows = self._rows(
            select(c.model, func.sum(c.count).label("n"))
            .where(c.time >= since, c.time < until)
            .group_by(c.model)
        )
        return {r["model"]: int(r["n"]) for r in rows}

    # retraining ---------------------------------------------------------------------------
    def retrain_runs_since(self, model: str, since: float) -> list[float]:
        c = retrain_runs_t.c
        rows = self._rows(select(c.time).where(c.model == model, c.time >= since).order_by(c.time))
        return [float(r["time"]) for r in rows]

    def add_retrain_run(self, key: str, model: str, at: float) -> bool:
        """Record a run once per key (a redelivered trigger does not count twice)."""
        ins = self._insert(retrain_runs_t).values(key=key, model=model, time=at)
        with self._tx() as conn:
            stmt = ins.on_conflict_do_nothing(index_elements=["key"])
            return conn.execute(stmt.returning(retrain_runs_t.c.key)).first() is not None

    def claim_retrain_run(
        self, key: str, model: str, at: float, *, cooldown_s: float, max_per_day: int
    ) -> str | None:
        """Atomically check the cooldown and the daily budget of ``model`` and record run
        ``key``; returns None when recorded (or already recorded under ``key``), else the reason
        it was refused. Concurrent workers are serialised per model (a row lock on PostgreSQL,
        the write lock on SQLite)."""
        c = retrain_runs_t.c
        with self._tx() as conn:
            self._lock_model(conn, model)
            if conn.execute(select(c.key).where(c.key == key)).first() is not None:
                return None
            # runs of the last 24 h, and runs of drift events that happened after this one but
            # were handled first (events are not always handled in their order)
            runs = sorted(
                float(t)
                for t in conn.execute(
                    select(c.time).where(c.model == model, c.time >= at - 86400.0)
                ).scalars()
            )
            if runs and runs[-1] > at - cooldown_s:
                return (
                    f"cooldown: last retraining {max(at - runs[-1], 0.0):.0f}s ago "
                    f"(cooldown {cooldown_s:.0f}s)"
                )
            if len(runs) >= max_per_day:
                return f"budget: {len(runs)} retrainings in 24 h (max_runs_per_day {max_per_day})"
            conn.execute(retrain_runs_t.insert().values(key=key, model=model, time=at))
            return None

    def _lock_model(self, conn: Connection, model: str) -> None:
        if self.dialect == "postgresql":  # one transaction per model at a time
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "herald.retrain:" + model}
            )
        # SQLite: the engine begins every transaction with BEGIN IMMEDIATE (one writer at a time)

    def save_plan(self, dataset: str, plan: dict[str, Any]) -> None:
        ins = self._insert(retrain_plans_t).values(
            dataset=dataset, plan=json.dumps(plan), time=time.time()
        )
        with self._tx() as conn:
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["dataset"],
                    set_={"plan": ins.excluded.plan, "time": ins.excluded.time},
                )
            )

    def plan(self, dataset: str) -> dict[str, Any] | None:
        rows = self._rows(
            select(retrain_plans_t.c.plan).where(retrain_plans_t.c.dataset == dataset)
        )
        return json.loads(rows[0]["plan"]) if rows else None
