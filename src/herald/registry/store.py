"""The registry: data set versions, model versions with aliases and lineage, experiment runs.

SQLAlchemy Core on the event log's database (SQLite by default, PostgreSQL for scale). The API is
synchronous (FastAPI runs sync routes in a thread pool; sensors run sync handlers in threads).
Every write is safe to repeat: data sets are content-addressed, model registrations and alias
moves take an idempotency key (the causing event's id), and metrics are keyed by (run, key, step).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, and_, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from herald.errors import BackendError, Conflict, NotFound
from herald.registry.card import render_model_card
from herald.registry.db import dumps, loads, make_engine, now_us, to_dt
from herald.registry.models import (
    MODEL_KINDS,
    DatasetVersion,
    InvalidRegistryRequest,
    ModelVersion,
    check_alias,
    check_metrics,
    check_name,
    parse_dataset_uri,
    parse_model_uri,
)
from herald.registry.runs import RunTracking
from herald.store import schema as s
from herald.store.shared import autocommit_sqlite

if TYPE_CHECKING:
    from herald.settings import Settings

T = TypeVar("T")
DS = s.datasets
MV = s.model_versions
AL = s.model_aliases
AH = s.alias_history


class Registry(RunTracking):
    """Versions, aliases, lineage and runs on one SQL database."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._engine: Engine | None = None
        self._reader: Engine | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Registry:
        """The registry on ``settings.resolved_database_url`` (settings loaded if not given)."""
        if settings is None:
            from herald.settings import load_settings

            settings = load_settings()
        return cls(settings.resolved_database_url)

    # plumbing -----------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine, created (and the schema migrated) on first use."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    engine = make_engine(self.database_url)
                    try:
                        _migrate(engine)
                    except Exception as exc:
                        engine.dispose()
                        raise BackendError(f"cannot open the registry database: {exc}") from exc
                    self._engine = engine
        return self._engine

    @property
    def read_engine(self) -> Engine:
        """For reads: on a SQLite file an engine in autocommit (a WAL read takes no lock, so
        reads never queue behind the ``BEGIN IMMEDIATE`` of a write, nor wait on a write the
        same thread has open); elsewhere the main engine."""
        engine = self.engine
        if engine.dialect.name != "sqlite" or not engine.url.database:
            return engine  # PostgreSQL (MVCC reads), or the private in-memory database
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    self._reader = autocommit_sqlite(engine)
        return self._reader

    def close(self) -> None:
        """Release database connections (the registry reopens on next use)."""
        with self._lock:
            for engine in (self._engine, self._reader):
                if engine is not None:
                    engine.dispose()
            self._engine = self._reader = None

    @contextmanager
    def _connection(self, *, begin: bool) -> Iterator[Connection]:
        try:
            with self.engine.begin() if begin else self.read_engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise BackendError(f"registry database error: {exc.orig}") from exc

    def _tx(self) -> AbstractContextManager[Connection]:
        """One transaction (committed when the block ends)."""
        return self._connection(begin=True)

    def _read(self) -> AbstractContextManager[Connection]:
        """A connection for reads (each statement sees the latest commit)."""
        return self._connection(begin=False)

    def _retrying(self, fn: Callable[[Connection], T], attempts: int = 30) -> T:
        """Run ``fn`` in a transaction; retry when a concurrent writer took the same key."""
        for i in range(attempts):
            try:
                with self._tx() as conn:
                    return fn(conn)
            except IntegrityError as exc:
                if i == attempts - 1:
                    raise Conflict(
                        f"registry write kept colliding with others: {exc.orig}"
                    ) from exc
                time.sleep(random.uniform(0, 0.002 * (i + 1)))  # let the winner commit
        raise AssertionError("unreachable")

    # data sets ----------------------------------------------------------------------------
    def add_dataset_version(
        self,
        name: str,
        *,
        fingerprint: str,
        artifact_uri: str,
        format: str,
        rows: int,
        splits: dict[str, int],
        stats: dict[str, Any],
        pii: dict[str, int],
        source: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        lineage: dict[str, Any] | None = None,
    ) -> tuple[DatasetVersion, bool]:
        """Add a version; the same ``fingerprint`` under ``name`` returns the existing one."""
        check_name(name, "data set")
        if not fingerprint:
            raise InvalidRegistryRequest("a data set version needs a fingerprint")
        if rows < 0:
            raise InvalidRegistryRequest("rows must be >= 0")
        row = {
            "name": name,
            "fingerprint": fingerprint,
            "artifact_uri": artifact_uri,
            "format": format,
            "rows": rows,
            "splits": dumps(splits),
            "stats": dumps(stats),
            "pii": dumps(pii),
            "source": source,
            "description": description,
            "tags": dumps(tags or {}),
            "lineage": dumps(lineage or {}),
        }

        def write(conn: Connection) -> tuple[DatasetVersion, bool]:
            existing = conn.execute(
                select(DS).where(DS.c.name == name, DS.c.fingerprint == fingerprint)
            ).first()
            if existing is not None:
                return _dataset(existing._mapping), False
            version = (
                conn.execute(select(func.max(DS.c.version)).where(DS.c.name == name)).scalar() or 0
            ) + 1
            values = {**row, "version": version, "created_us": now_us()}
            conn.execute(DS.insert().values(**values))
            return _dataset(values), True

        return self._retrying(write)

    def get_dataset(self, ref: str, version: int | None = None) -> DatasetVersion:
        """``name`` (latest), ``name/3`` or ``datasets:/name/3``."""
        name, version = parse_dataset_uri(ref, version)
        with self._read() as conn:
            q = select(DS).where(DS.c.name == name)
            q = (
                q.where(DS.c.version == version)
                if version
                else q.order_by(DS.c.version.desc()).limit(1)
            )
            row = conn.execute(q).first()
            if row is None:
                versions = conn.execute(
                    select(DS.c.version).where(DS.c.name == name).order_by(DS.c.version)
                ).scalars()
                have = ", ".join(str(v) for v in versions)
                if have:
                    raise NotFound(f"data set {name!r} has no version {version} (versions: {have})")
                names = conn.execute(select(DS.c.name).distinct().order_by(DS.c.name)).scalars()
                raise NotFound(
                    f"no data set {name!r}; registered: {_listing(names)}; register one with "
                    "`herald datasets register` or a dataset.register message"
                )
            return _dataset(row._mapping)

    def list_datasets(self, name: str | None = None) -> list[DatasetVersion]:
        """Latest version of every data set, or every version of ``name``."""
        with self._read() as conn:
            if name is not None:
                check_name(name, "data set")
                rows = conn.execute(
                    select(DS).where(DS.c.name == name).order_by(DS.c.version.desc())
                )
            else:
                latest = (
                    select(DS.c.name, func.max(DS.c.version).label("v"))
                    .group_by(DS.c.name)
                    .subquery()
                )
                rows = conn.execute(
                    select(DS)
                    .join(latest, and_(DS.c.name == latest.c.name, DS.c.version == latest.c.v))
                    .order_by(DS.c.name)
                )
            return [_dataset(r._mapping) for r in rows]

    # model versions -----------------------------------------------------------------------
    def register_model_version(
        self,
        name: str,
        *,
        artifact_uri: str,
        kind: str,
        base_model: str | None = None,
        dataset: str | None = None,
        run_id: str | None = None,
        job_id: str | None = None,
        config: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        chat_template: str | None = None,
        tags: dict[str, str] | None = None,
        description: str = "",
        lineage: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[ModelVersion, bool]:
        """Add the next version of ``name``; a repeated ``idempotency_key`` returns the first."""
        check_name(name)
        if kind not in MODEL_KINDS:
            raise InvalidRegistryRequest(
                f"unknown model kind {kind!r} (known: {', '.join(MODEL_KINDS)})"
            )
        if not artifact_uri:
            raise InvalidRegistryRequest("a model version needs an artifact_uri")
        row = {
            "name": name,
            "artifact_uri": artifact_uri,
            "kind": kind,
            "status": "ready",
            "base_model": base_model,
            "dataset": dataset,
            "run_id": run_id,
            "job_id": job_id,
            "config": dumps(config or {}),
            "metrics": dumps(check_metrics(metrics)),
            "chat_template": chat_template,
            "tags": dumps(tags or {}),
            "description": description,
            "lineage": dumps(lineage or {}),
            "idempotency_key": idempotency_key,
        }

        def write(conn: Connection) -> tuple[ModelVersion, bool]:
            if idempotency_key is not None:
                existing = conn.execute(
                    select(MV).where(MV.c.idempotency_key == idempotency_key)
                ).first()
                if existing is not None:
                    return self._version(conn, existing._mapping), False
            version = (
                conn.execute(select(func.max(MV.c.version)).where(MV.c.name == name)).scalar() or 0
            ) + 1
            values = {**row, "version": version, "created_us": now_us(), "archived_us": None}
            conn.execute(MV.insert().values(**values))
            return self._version(conn, values), True

        return self._retrying(write)

    def get_version(self, name: str, version: int) -> ModelVersion:
        check_name(name)
        with self._read() as conn:
            row = conn.execute(select(MV).where(MV.c.name == name, MV.c.version == version)).first()
            if row is None:
                raise NotFound(self._missing_version(conn, name, version))
            return self._version(conn, row._mapping)

    def resolve(self, uri_or_name: str) -> ModelVersion:
        """``models:/name@alias`` / ``models:/name/3`` / ``models:/name`` (latest ready) / bare."""
        ref = parse_model_uri(uri_or_name)
        if ref.version is not None:
            return self.get_version(ref.name, ref.version)
        with self._read() as conn:
            if ref.alias is not None:
                v = conn.execute(
                    select(AL.c.version).where(AL.c.name == ref.name, AL.c.alias == ref.alias)
                ).scalar()
                if v is None:
                    aliases = self._aliases_of(conn, ref.name)
                    if not aliases and not self._exists(conn, ref.name):
                        raise NotFound(self._missing_model(conn, ref.name))
                    have = ", ".join(f"{a}→{n}" for a, n in sorted(aliases.items())) or "none"
                    raise NotFound(
                        f"model {ref.name!r} has no alias {ref.alias!r} (aliases: {have}); "
                        f"promote a version with `herald models promote {ref.name} VERSION "
                        f"--alias {ref.alias}`"
                    )
                row = conn.execute(
                    select(MV).where(MV.c.name == ref.name, MV.c.version == v)
                ).first()
            else:
                row = conn.execute(
                    select(MV)
                    .where(MV.c.name == ref.name, MV.c.status == "ready")
                    .order_by(MV.c.version.desc())
                    .limit(1)
                ).first()
                if row is None:
                    if self._exists(conn, ref.name):
                        raise NotFound(
                            f"every version of model {ref.name!r} is archived; name a version "
                            f"(models:/{ref.name}/N) to use an archived one"
                        )
                    raise NotFound(self._missing_model(conn, ref.name))
            assert row is not None
            return self._version(conn, row._mapping)

    def list_models(
        self, *, limit: int | None = None, after: str | None = None
    ) -> list[dict[str, Any]]:
        """One summary per model (latest version, counts, aliases, last update), by name;
        ``after`` continues after that name and ``limit`` caps the page (keyset paging)."""
        with self._read() as conn:
            q = (
                select(
                    MV.c.name,
                    func.max(MV.c.version).label("latest"),
                    func.count().label("versions"),
                    func.max(MV.c.created_us).label("updated_us"),
                )
                .group_by(MV.c.name)
                .order_by(MV.c.name)
            )
            if after is not None:
                q = q.where(MV.c.name > after)
            if limit is not None:
                q = q.limit(limit)
            stats = conn.execute(q).all()
            aliases: dict[str, dict[str, int]] = {}
            names = [r.name for r in stats]
            for r in conn.execute(select(AL).where(AL.c.name.in_(names))):
                aliases.setdefault(r.name, {})[r.alias] = r.version
            out = []
            for r in stats:
                latest = conn.execute(
                    select(MV.c.kind, MV.c.status, MV.c.base_model).where(
                        MV.c.name == r.name, MV.c.version == r.latest
                    )
                ).one()
                out.append(
                    {
                        "name": r.name,
                        "latest_version": r.latest,
                        "versions": r.versions,
                        "aliases": aliases.get(r.name, {}),
                        "kind": latest.kind,
                        "base_model": latest.base_model,
                        "updated_at": to_dt(r.updated_us),
                        "uri": f"models:/{r.name}",
                    }
                )
            return out

    def list_versions(
        self, name: str, *, limit: int | None = None, before: int | None = None
    ) -> list[ModelVersion]:
        """Versions of ``name``, newest first (NotFound for an unknown model); ``before``
        continues below that version number and ``limit`` caps the page (keyset paging)."""
        check_name(name)
        with self._read() as conn:
            q = select(MV).where(MV.c.name == name).order_by(MV.c.version.desc())
            if before is not None:
                q = q.where(MV.c.version < before)
            if limit is not None:
                q = q.limit(limit)
            rows = conn.execute(q).all()
            if not rows and (before is None or not self._exists(conn, name)):
                raise NotFound(self._missing_model(conn, name))
            aliases = self._aliases_of(conn, name)
            return [_model(r._mapping, aliases) for r in rows]

    def latest_version(self, name: str) -> int:
        """The highest version number of ``name`` (NotFound for an unknown model)."""
        check_name(name)
        with self._read() as conn:
            latest = conn.execute(select(func.max(MV.c.version)).where(MV.c.name == name))
            version = latest.scalar()
            if version is None:
                raise NotFound(self._missing_model(conn, name))
            return int(version)

    # aliases ------------------------------------------------------------------------------
    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` of ``name`` (empty when it has none)."""
        check_name(name)
        with self._read() as conn:
            return self._aliases_of(conn, name)

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        reason: str = "",
        actor: str = "",
        idempotency_key: str | None = None,
    ) -> int | None:
        """Point ``alias`` at ``version``; returns the version it pointed at before (or None)."""
        check_name(name)
        check_alias(alias)

        def write(conn: Connection) -> int | None:
            if idempotency_key is not None:
                done = conn.execute(
                    select(AH.c.previous_version).where(AH.c.idempotency_key == idempotency_key)
                ).first()
                if done is not None:
                    return done.previous_version  # type: ignore[no-any-return]
            row = conn.execute(
                select(MV.c.status).where(MV.c.name == name, MV.c.version == version)
            ).first()
            if row is None:
                raise NotFound(self._missing_version(conn, name, version))
            if row.status == "archived":
                raise Conflict(
                    f"models:/{name}/{version} is archived; archived versions cannot take an "
                    "alias (register it again to reuse the weights)"
                )
            previous = conn.execute(
                select(AL.c.version).where(AL.c.name == name, AL.c.alias == alias)
            ).scalar()
            t = now_us()
            if previous is None:
                conn.execute(
                    AL.insert().values(name=name, alias=alias, version=version, updated_us=t)
                )
            else:
                conn.execute(
                    update(AL)
                    .where(AL.c.name == name, AL.c.alias == alias)
                    .values(version=version, updated_us=t)
                )
            conn.execute(
                AH.insert().values(
                    name=name,
                    alias=alias,
                    version=version,
                    previous_version=previous,
                    action="set",
                    reason=reason,
                    actor=actor,
                    idempotency_key=idempotency_key,
                    time_us=t,
                )
            )
            return previous

        return self._retrying(write)

    def alias_history(self, name: str, alias: str | None = None) -> list[dict[str, Any]]:
        """Every alias move of ``name`` (append-only), oldest first."""
        check_name(name)
        with self._read() as conn:
            q = select(AH).where(AH.c.name == name)
            if alias is not None:
                q = q.where(AH.c.alias == check_alias(alias))
            return [
                {
                    "name": r.name,
                    "alias": r.alias,
                    "action": r.action,
                    "version": r.version,
                    "previous_version": r.previous_version,
                    "reason": r.reason,
                    "actor": r.actor,
                    "time": to_dt(r.time_us),
                }
                for r in conn.execute(q.order_by(AH.c.id))
            ]

    def archive_version(
        self, name: str, version: int, *, reason: str = "", actor: str = ""
    ) -> list[str]:
        """Archive a version: it keeps its number but loses its aliases (returned)."""
        check_name(name)

        def write(conn: Connection) -> list[str]:
            row = conn.execute(
                select(MV.c.status, MV.c.archived_us).where(
                    MV.c.name == name, MV.c.version == version
                )
            ).first()
            if row is None:
                raise NotFound(self._missing_version(conn, name, version))
            if row.status == "archived":  # a repeat: report what the first call removed
                return list(
                    conn.execute(
                        select(AH.c.alias).where(
                            AH.c.name == name,
                            AH.c.previous_version == version,
                            AH.c.action == "archive",
                            AH.c.time_us == row.archived_us,
                        )
                    ).scalars()
                )
            t = now_us()
            removed = sorted(
                conn.execute(
                    select(AL.c.alias).where(AL.c.name == name, AL.c.version == version)
                ).scalars()
            )
            conn.execute(AL.delete().where(AL.c.name == name, AL.c.version == version))
            for a in removed:
                conn.execute(
                    AH.insert().values(
                        name=name,
                        alias=a,
                        version=None,
                        previous_version=version,
                        action="archive",
                        reason=reason,
                        actor=actor,
                        time_us=t,
                    )
                )
            conn.execute(
                update(MV)
                .where(MV.c.name == name, MV.c.version == version)
                .values(status="archived", archived_us=t)
            )
            return removed

        return self._retrying(write)

    # lineage and cards --------------------------------------------------------------------
    def add_version_metrics(
        self, name: str, version: int, metrics: dict[str, float], *, source: str
    ) -> None:
        """Merge ``metrics`` (e.g. evaluation results) into a version and record where from."""
        clean = check_metrics(metrics)
        if not source:
            raise InvalidRegistryRequest("add_version_metrics needs a source (e.g. an eval run)")

        def write(conn: Connection) -> None:
            row = conn.execute(
                select(MV.c.metrics, MV.c.lineage).where(MV.c.name == name, MV.c.version == version)
            ).first()
            if row is None:
                raise NotFound(self._missing_version(conn, name, version))
            lineage = loads(row.lineage)
            evaluations = [e for e in lineage.get("evaluations", []) if e.get("source") != source]
            evaluations.append({"source": source, "metrics": clean, "time_us": now_us()})
            lineage["evaluations"] = evaluations
            conn.execute(
                update(MV)
                .where(MV.c.name == name, MV.c.version == version)
                .values(metrics=dumps({**loads(row.metrics), **clean}), lineage=dumps(lineage))
            )

        self._retrying(write)

    def model_card(self, name: str, version: int) -> str:
        """A Hugging Face model card (YAML front matter + markdown) for one version."""
        mv = self.get_version(name, version)
        dataset = None
        if mv.dataset:
            try:
                dataset = self.get_dataset(mv.dataset)
            except (NotFound, InvalidRegistryRequest):
                dataset = None
        return render_model_card(mv, dataset)

    # helpers ------------------------------------------------------------------------------
    def _exists(self, conn: Connection, name: str) -> bool:
        return (
            conn.execute(select(MV.c.version).where(MV.c.name == name).limit(1)).first() is not None
        )

    def _aliases_of(self, conn: Connection, name: str) -> dict[str, int]:
        return {r.alias: r.version for r in conn.execute(select(AL).where(AL.c.name == name))}

    def _version(self, conn: Connection, row: Any) -> ModelVersion:
        return _model(row, self._aliases_of(conn, row["name"]))

    def _missing_model(self, conn: Connection, name: str) -> str:
        names = conn.execute(select(MV.c.name).distinct().order_by(MV.c.name)).scalars()
        return f"no model {name!r} in the registry; registered models: {_listing(names)}"

    def _missing_version(self, conn: Connection, name: str, version: int) -> str:
        versions = list(
            conn.execute(
                select(MV.c.version).where(MV.c.name == name).order_by(MV.c.version)
            ).scalars()
        )
        if not versions:
            return self._missing_model(conn, name)
        return f"model {name!r} has no version {version} (versions: {_listing(map(str, versions))})"


_MIGRATE_LOCK = threading.Lock()  # Alembic's command API is not thread-safe (global context)
_head: str | None = None


def _migrate(engine: Engine) -> None:
    """Upgrade the schema to head unless it is there already (the usual case: the event log
    migrated it when Herald started)."""
    global _head
    from herald.store.migrate import alembic_config, current, upgrade

    with _MIGRATE_LOCK:
        if _head is None:
            from alembic.script import ScriptDirectory

            _head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with engine.connect() as conn:
            if current(conn) == _head:
                return
        with engine.begin() as conn:
            upgrade(conn)


def _listing(items: Any, limit: int = 20) -> str:
    items = list(items)
    if not items:
        return "none"
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _model(row: Any, aliases: dict[str, int]) -> ModelVersion:
    return ModelVersion(
        name=row["name"],
        version=row["version"],
        uri=f"models:/{row['name']}/{row['version']}",
        artifact_uri=row["artifact_uri"],
        kind=row["kind"],
        status=row["status"],
        aliases=sorted(a for a, v in aliases.items() if v == row["version"]),
        base_model=row["base_model"],
        dataset=row["dataset"],
        run_id=row["run_id"],
        job_id=row["job_id"],
        config=loads(row["config"]),
        metrics=loads(row["metrics"]),
        chat_template=row["chat_template"],
        tags=loads(row["tags"]),
        description=row["description"],
        lineage=loads(row["lineage"]),
        created_at=to_dt(row["created_us"]),
        archived_at=to_dt(row["archived_us"]),
    )


def _dataset(row: Any) -> DatasetVersion:
    return DatasetVersion(
        name=row["name"],
        version=row["version"],
        uri=f"datasets:/{row['name']}/{row['version']}",
        fingerprint=row["fingerprint"],
        artifact_uri=row["artifact_uri"],
        format=row["format"],
        rows=row["rows"],
        splits=loads(row["splits"]),
        stats=loads(row["stats"]),
        pii=loads(row["pii"]),
        source=row["source"],
        description=row["description"],
        tags=loads(row["tags"]),
        lineage=loads(row["lineage"]),
        created_at=to_dt(row["created_us"]),
    )
