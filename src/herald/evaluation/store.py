"""Evaluation results, where every role sees them.

``herald_evaluations`` holds one row per evaluation (suite, target, resolved model version,
status, aggregates); ``herald_evaluation_items`` one row per (evaluation, sample) with the
input, the output, the scores and the errors. Items are written as they complete, so a killed
evaluation resumes by skipping the samples already stored. Comparisons pair items by sample id
(paired bootstrap).

Where the state lives: on PostgreSQL in the shared database, so an evaluation a worker writes is
listed by the api pods (and read by the serving role's rollout gates); embedded in
``$HERALD_HOME/evaluations/evaluations.db`` (SQLite, WAL).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Row,
    Table,
    Text,
    and_,
    bindparam,
    case,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from herald.errors import Conflict, NotFound
from herald.evaluation.stats import paired_bootstrap
from herald.store.shared import StateStore

if TYPE_CHECKING:
    pass

METADATA = MetaData()
EVALUATIONS = Table(
    "herald_evaluations",
    METADATA,
    Column("id", Text, primary_key=True),
    Column("suite", Text, nullable=False),
    Column("suite_path", Text),
    Column("suite_fingerprint", Text),
    Column("target", Text, nullable=False),
    Column("model", Text),
    Column("model_version", Text),
    Column("status", Text, nullable=False),
    Column("created_at", Float, nullable=False),  # epoch seconds
    Column("finished_at", Float),
    Column("total", Integer, server_default="0"),
    Column("options", Text, server_default="{}"),  # JSON
    Column("metrics", Text, server_default="{}"),  # JSON
    Column("higher_is_better", Text, server_default="{}"),  # JSON
    Column("thresholds", Text, server_default="{}"),  # JSON
    Column("passed", Integer),  # 0/1
    Column("primary_metric", Text),
    Column("correlationid", Text),
    Column("job_id", Text),
    Column("step", Integer),
    Column("error", Text),
    Index("herald_evaluations_suite", "suite", "status"),
    Index("herald_evaluations_created", "created_at", "id"),  # keyset paging
)
ITEMS = Table(
    "herald_evaluation_items",
    METADATA,
    Column("evaluation_id", Text, primary_key=True),
    Column("sample_id", Text, primary_key=True),
    Column("idx", Integer, nullable=False),
    Column("input", Text),  # JSON
    Column("output", Text),
    Column("scores", Text, nullable=False, server_default="{}"),  # JSON
    Column("errors", Text, nullable=False, server_default="{}"),  # JSON
    Column("latency_s", Float),
    Column("created_at", Float, nullable=False),
)
LEGACY_TABLES = (("evaluations", EVALUATIONS), ("items", ITEMS))  # SQLite files before herald_*
JSON_COLS = ("options", "metrics", "higher_is_better", "thresholds")
_E, _I = EVALUATIONS.c, ITEMS.c
# the hot path (one per stored item), built once
_ITEM_KEY = and_(_I.evaluation_id == bindparam("b_eid"), _I.sample_id == bindparam("b_sid"))
_SELECT_ITEM = (
    select(_I.scores, _I.errors, _I.output, _I.input, _I.idx).where(_ITEM_KEY).with_for_update()
)
_UPDATE_ITEM = update(ITEMS).where(_ITEM_KEY)


def default_path(home: Path | str) -> Path:
    """The SQLite file of an embedded Herald home."""
    return EvaluationStore.default_path(home)


class EvaluationStore(StateStore):
    """The results database (thread- and process-safe).

    ``EvaluationStore(path)`` keeps results in that SQLite file;
    ``EvaluationStore("postgresql://…")`` in that database; :meth:`from_settings` picks the one
    every role of a Herald shares (its PostgreSQL database, else the home's SQLite file).
    """

    metadata = METADATA
    sqlite_file = "evaluations/evaluations.db"
    what = "evaluation database"
    legacy_tables = dict(LEGACY_TABLES)

    def __init__(self, target: Path | str) -> None:
        super().__init__(target)
        self._insert_item = (
            self._insert(ITEMS)
            .on_conflict_do_nothing(index_elements=["evaluation_id", "sample_id"])
            .returning(_I.sample_id)
        )

    def _open(self) -> Engine:
        engine = super()._open()
        if engine.dialect.name == "sqlite":
            _sync_normal(engine)
        return engine

    @classmethod
    def from_home(cls, home: Path) -> EvaluationStore:
        """The SQLite file of an embedded home (prefer :meth:`from_settings`, which follows
        Herald onto PostgreSQL)."""
        return cls(default_path(home))

    def _insert(self, table: Table) -> Any:
        """A dialect ``INSERT`` (for ``on_conflict_do_nothing``) on SQLite and PostgreSQL."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # writes -------------------------------------------------------------------------------
    def begin(self, evaluation_id: str, **fields: Any) -> tuple[dict[str, Any], set[str]]:
        """Create (or reopen, to resume) an evaluation; returns it and the sample ids done."""
        cols = {"id": evaluation_id, "status": "running", "created_at": time.time()}
        cols |= {k: _enc(k, v) for k, v in fields.items()}
        with self._tx() as c:
            created = c.execute(
                self._insert(EVALUATIONS)
                .values(cols)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(_E.id)
            ).first()
            if created is None:  # it exists (another process may have created it just now)
                row = (
                    c.execute(select(EVALUATIONS).where(_E.id == evaluation_id).with_for_update())
                    .one()
                    ._mapping
                )
                if row["suite"] != fields.get("suite", row["suite"]) or (
                    fields.get("suite_fingerprint")
                    and row["suite_fingerprint"] != fields["suite_fingerprint"]
                ):
                    raise Conflict(
                        f"evaluation {evaluation_id} exists for another suite or data set "
                        f"({row['suite']}); use a new evaluation id"
                    )
                c.execute(
                    update(EVALUATIONS)
                    .where(_E.id == evaluation_id)
                    .values(
                        status="running", error=None, job_id=fields.get("job_id") or row["job_id"]
                    )
                )
            done = set(
                c.execute(select(_I.sample_id).where(_I.evaluation_id == evaluation_id)).scalars()
            )
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
        key = {"b_eid": evaluation_id, "b_sid": sample_id}
        with self._tx() as c:
            for _ in range(2):  # the second pass merges into a row another process just wrote
                row = c.execute(_SELECT_ITEM, key).first()
                if row is None:
                    values = _item(idx, input, output, scores, errors, latency_s)
                    values |= {"evaluation_id": evaluation_id, "sample_id": sample_id}
                    if c.execute(self._insert_item, values).first() is not None:
                        return  # (RETURNING: rowcount is -1 here on psycopg)
                    continue
                # a later engine (batch) adds to the item; the first wins ties
                m = row._mapping
                merged_input = input
                old_input = json.loads(m["input"]) if m["input"] else None
                if isinstance(old_input, dict) and isinstance(input, dict):
                    merged_input = {**input, **old_input}
                elif old_input is not None:
                    merged_input = old_input
                values = _item(
                    m["idx"] if idx < 0 <= m["idx"] else idx,
                    merged_input,
                    m["output"] if m["output"] is not None else output,
                    {**json.loads(m["scores"]), **scores},
                    {**json.loads(m["errors"]), **errors},
                    latency_s,
                )
                c.execute(_UPDATE_ITEM, values | key)
                return
            raise Conflict(  # pragma: no cover - an insert that conflicts leaves a row to read
                f"item {sample_id} of evaluation {evaluation_id} could not be stored; retry"
            )

    def finish(self, evaluation_id: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("finished_at", time.time())
        with self._tx() as c:
            c.execute(
                update(EVALUATIONS)
                .where(_E.id == evaluation_id)
                .values({k: _enc(k, v) for k, v in fields.items()})
            )
        return self.get(evaluation_id)

    # reads --------------------------------------------------------------------------------
    def get(self, evaluation_id: str) -> dict[str, Any]:
        with self._read() as c:
            return self._get(c, evaluation_id)

    @staticmethod
    def _get(c: Connection, evaluation_id: str) -> dict[str, Any]:
        row = c.execute(select(EVALUATIONS).where(_E.id == evaluation_id)).first()
        if row is None:
            raise NotFound(f"evaluation {evaluation_id!r} not found")
        out = _row(row)
        total, failed = c.execute(
            select(func.count(), func.sum(case((_I.errors != "{}", 1), else_=0))).where(
                _I.evaluation_id == evaluation_id
            )
        ).one()
        out["done"] = int(total or 0)
        out["failed_items"] = int(failed or 0)
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
        query = select(EVALUATIONS)
        for col, value in (
            (_E.suite, suite),
            (_E.target, target),
            (_E.model_version, model_version),
            (_E.status, status),
        ):
            if value is not None:
                query = query.where(col == value)
        if before is not None:  # the redundant <= bound lets the index start at the cursor
            query = query.where(
                _E.created_at <= before[0],
                or_(_E.created_at < before[0], _E.id < before[1]),
            )
        query = query.order_by(_E.created_at.desc(), _E.id.desc()).limit(limit)
        with self._read() as c:
            return [_row(r) for r in c.execute(query)]

    def items(
        self,
        evaluation_id: str,
        *,
        failed: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        query = select(ITEMS).where(_I.evaluation_id == evaluation_id)
        if failed is True:
            query = query.where(_I.errors != "{}")
        elif failed is False:
            query = query.where(_I.errors == "{}")
        query = query.order_by(_I.idx, _I.sample_id).limit(limit).offset(offset)
        with self._read() as c:
            self._get(c, evaluation_id)
            rows = [r._mapping for r in c.execute(query)]
        return [
            {
                "sample_id": r["sample_id"],
                "index": r["idx"],
                "input": json.loads(r["input"]) if r["input"] else None,
                "output": r["output"],
                "scores": dict(json.loads(r["scores"])),
                "errors": json.loads(r["errors"]),
                "latency_s": r["latency_s"],
            }
            for r in rows
        ]

    def all_scores(self, evaluation_id: str) -> dict[str, tuple[dict[str, float], dict[str, Any]]]:
        """sample id → (scores, errors) for every stored item."""
        query = (
            select(_I.sample_id, _I.scores, _I.errors)
            .where(_I.evaluation_id == evaluation_id)
            .order_by(_I.idx, _I.sample_id)
        )
        with self._read() as c:
            rows = c.execute(query).all()
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


def _item(
    idx: int,
    input: Any,
    output: str | None,
    scores: dict[str, float],
    errors: dict[str, Any],
    latency_s: float | None,
) -> dict[str, Any]:
    return {
        "idx": idx,
        "input": json.dumps(input, default=str),
        "output": output,
        "scores": json.dumps(scores),
        "errors": json.dumps(errors, default=str),
        "latency_s": latency_s,
        "created_at": time.time(),
    }


def _sync_normal(engine: Engine) -> None:
    """``synchronous=NORMAL`` (as this store always ran) instead of the engine's ``FULL``: an
    fsync per stored item was a third of an evaluation's time on a fast endpoint, and items lost
    to a power cut (never to a crash of the process) are just scored again on resume."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    engine.dispose()  # connections opened so far (create_all) had FULL


def _enc(key: str, value: Any) -> Any:
    if key in JSON_COLS:
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return int(value)
    return value


def _row(row: Row[Any]) -> dict[str, Any]:
    out = dict(row._mapping)
    for k in JSON_COLS:
        out[k] = json.loads(out[k]) if out.get(k) else {}
    if out.get("passed") is not None:
        out["passed"] = bool(out["passed"])
    return out
