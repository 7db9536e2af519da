"""Experiment tracking: runs with params, step metrics and artifacts (mixed into Registry)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from herald.errors import NotFound
from herald.registry.db import dumps, loads, now_us, to_dt
from herald.registry.models import RUN_STATUSES, InvalidRegistryRequest, Run, check_metrics
from herald.store import schema as s

T = TypeVar("T")
R = s.runs
RM = s.run_metrics
RA = s.run_artifacts
MV = s.model_versions
_RUN_FILTERS = ("name", "job_id", "status")


def _check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not run_id or len(run_id) > 128:
        raise InvalidRegistryRequest(f"run id must be a 1-128 character string, got {run_id!r}")
    return run_id


class RunTracking:
    """Runs, metrics and artifacts; needs ``_tx`` and ``_retrying`` from the Registry."""

    _tx: Callable[[], AbstractContextManager[Connection]]
    _read: Callable[[], AbstractContextManager[Connection]]
    _retrying: Callable[..., Any]

    def create_run(
        self,
        run_id: str,
        *,
        name: str,
        job_id: str | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> Run:
        """Start a run (a retried job calling this again gets the existing run back)."""
        _check_run_id(run_id)

        def write(conn: Connection) -> None:
            if conn.execute(select(R.c.id).where(R.c.id == run_id)).first() is None:
                conn.execute(
                    R.insert().values(
                        id=run_id,
                        name=name,
                        job_id=job_id,
                        status="running",
                        params=dumps(params or {}),
                        tags=dumps(tags or {}),
                        created_us=now_us(),
                        finished_us=None,
                    )
                )

        self._retrying(write)
        return self.get_run(run_id)

    def log_metrics(
        self,
        run_id: str,
        step: int,
        metrics: dict[str, float],
        *,
        timestamp: float | None = None,
    ) -> None:
        """Record metric values at ``step`` (logging the same step again overwrites)."""
        clean = check_metrics(metrics)
        if step < 0:
            raise InvalidRegistryRequest("step must be >= 0")
        if not clean:
            return
        t = int(timestamp * 1_000_000) if timestamp is not None else now_us()
        rows = [
            {"run_id": run_id, "key": k, "step": step, "value": v, "time_us": t}
            for k, v in clean.items()
        ]

        def write(conn: Connection) -> None:
            self._require_run(conn, run_id)
            ins = _insert(conn)(RM)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["run_id", "key", "step"],
                    set_={"value": ins.excluded.value, "time_us": ins.excluded.time_us},
                ),
                rows,
            )

        self._retrying(write)

    def log_artifact(self, run_id: str, name: str, uri: str) -> None:
        """Attach an artifact URI to a run under ``name`` (replacing one of the same name)."""
        if not name or not uri:
            raise InvalidRegistryRequest("log_artifact needs a name and a uri")

        def write(conn: Connection) -> None:
            self._require_run(conn, run_id)
            ins = _insert(conn)(RA).values(run_id=run_id, name=name, uri=uri, time_us=now_us())
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["run_id", "name"],
                    set_={"uri": ins.excluded.uri, "time_us": ins.excluded.time_us},
                )
            )

        self._retrying(write)

    def finish_run(self, run_id: str, status: str, *, error: str | None = None) -> None:
        """Mark a run ``finished``, ``failed`` or ``killed``; ``error`` (why it failed) goes to
        its ``error`` tag (a later finish without one removes it)."""
        if status not in RUN_STATUSES[1:]:
            raise InvalidRegistryRequest(
                f"run status must be one of {', '.join(RUN_STATUSES[1:])}, got {status!r}"
            )

        def write(conn: Connection) -> None:
            row = self._require_run(conn, run_id)
            tags = {k: v for k, v in loads(row._mapping["tags"]).items() if k != "error"}
            if error:
                tags["error"] = error[:2000]
            conn.execute(
                update(R)
                .where(R.c.id == run_id)
                .values(status=status, finished_us=now_us(), tags=dumps(tags))
            )

        self._retrying(write)

    def get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            row = self._require_run(conn, run_id)
            return self._run(conn, row._mapping)

    def list_runs(
        self, *, limit: int = 100, before: tuple[int, str] | None = None, **filters: Any
    ) -> list[Run]:
        """Newest first by (created µs, id); filter by ``name``, ``job_id`` or ``status``.

        ``before`` continues after that key (keyset paging: runs created meanwhile are newer,
        so pages never repeat or skip a run)."""
        unknown = set(filters) - set(_RUN_FILTERS)
        if unknown:
            raise InvalidRegistryRequest(
                f"unknown run filter(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(_RUN_FILTERS)})"
            )
        q = select(R)
        for k, v in filters.items():
            if v is not None:
                q = q.where(R.c[k] == v)
        if before is not None:
            us, run_id = before
            # ``<=`` lets the created index start at the cursor; the OR breaks ties by id
            q = q.where(R.c.created_us <= us, or_(R.c.created_us < us, R.c.id < run_id))
        with self._read() as conn:
            q = q.order_by(R.c.created_us.desc(), R.c.id.desc()).limit(limit)
            rows = conn.execute(q).all()
            return [self._run(conn, r._mapping) for r in rows]

    def run_metrics(
        self, run_id: str, keys: list[str] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Metric series of a run: key → [{step, value, timestamp}] in step order."""
        with self._read() as conn:
            self._require_run(conn, run_id)
            q = select(RM).where(RM.c.run_id == run_id)
            if keys:
                q = q.where(RM.c.key.in_(keys))
            out: dict[str, list[dict[str, Any]]] = {k: [] for k in keys or []}
            for r in conn.execute(q.order_by(RM.c.key, RM.c.step)):
                out.setdefault(r.key, []).append(
                    {"step": r.step, "value": r.value, "timestamp": r.time_us / 1_000_000}
                )
            return out

    def compare_runs(self, run_ids: list[str]) -> dict[str, Any]:
        """Params that differ / agree, and each metric's last, min and max per run."""
        if len(run_ids) < 1:
            raise InvalidRegistryRequest("compare_runs needs at least one run id")
        runs = [self.get_run(r) for r in run_ids]
        keys = sorted({k for r in runs for k in _flatten(r.params)})
        flat = {r.id: _flatten(r.params) for r in runs}
        differ: dict[str, dict[str, Any]] = {}
        same: dict[str, Any] = {}
        for k in keys:
            values = {rid: p.get(k) for rid, p in flat.items()}
            if len({dumps(v) for v in values.values()}) > 1:
                differ[k] = values
            else:
                same[k] = next(iter(values.values()))
        metrics: dict[str, dict[str, dict[str, float]]] = {}
        with self._read() as conn:
            stats = conn.execute(
                select(
                    RM.c.run_id,
                    RM.c.key,
                    func.min(RM.c.value).label("min"),
                    func.max(RM.c.value).label("max"),
                    func.max(RM.c.step).label("last_step"),
                )
                .where(RM.c.run_id.in_(run_ids))
                .group_by(RM.c.run_id, RM.c.key)
            ).all()
        last = {r.id: r.metrics for r in runs}
        for st in stats:
            metrics.setdefault(st.key, {})[st.run_id] = {
                "last": last[st.run_id][st.key],
                "min": st.min,
                "max": st.max,
                "last_step": st.last_step,
            }
        return {
            "runs": [r.model_dump(mode="json") for r in runs],
            "params": {"differ": differ, "same": same},
            "metrics": dict(sorted(metrics.items())),
        }

    # helpers ------------------------------------------------------------------------------
    def _require_run(self, conn: Connection, run_id: str) -> Any:
        row = conn.execute(select(R).where(R.c.id == _check_run_id(run_id))).first()
        if row is None:
            raise NotFound(f"no run {run_id!r}; list runs with `herald runs list`")
        return row

    def _run(self, conn: Connection, row: Any) -> Run:
        # last value of each key: the row with the largest step
        latest = (
            select(RM.c.key, func.max(RM.c.step).label("step"))
            .where(RM.c.run_id == row["id"])
            .group_by(RM.c.key)
            .subquery()
        )
        last = {
            r.key: r.value
            for r in conn.execute(
                select(RM.c.key, RM.c.value)
                .join(
                    latest,
                    (RM.c.key == latest.c.key) & (RM.c.step == latest.c.step),
                )
                .where(RM.c.run_id == row["id"])
            )
        }
        artifacts = {
            r.name: r.uri for r in conn.execute(select(RA).where(RA.c.run_id == row["id"]))
        }
        models = [
            f"models:/{r.name}/{r.version}"
            for r in conn.execute(
                select(MV.c.name, MV.c.version)
                .where(MV.c.run_id == row["id"])
                .order_by(MV.c.name, MV.c.version)
            )
        ]
        return Run(
            id=row["id"],
            name=row["name"],
            job_id=row["job_id"],
            status=row["status"],
            params=loads(row["params"]),
            tags=loads(row["tags"]),
            metrics=dict(sorted(last.items())),
            artifacts=artifacts,
            models=models,
            created_at=to_dt(row["created_us"]),
            finished_at=to_dt(row["finished_us"]),
        )


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
