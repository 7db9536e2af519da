"""Deployment state every serving process must see.

Embedded it lives in ``$HERALD_HOME/serving/state.db`` (SQLite, WAL), shared by the processes of
one host. On PostgreSQL it lives in the shared database (tables ``herald_deployments`` and
``herald_deployments_meta``), so a revision written by ``herald worker`` on one host reaches the
``herald serve`` / ``herald api`` processes on every other host. A ``generation`` counter,
bumped by every change, makes change detection one cheap read.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from herald.errors import BackendError
from herald.serving.deployments.models import Deployment, DeploymentNotFound
from herald.store.shared import StateStore, safe_url

METADATA = MetaData()
deployments = Table(
    "herald_deployments",
    METADATA,
    Column("name", Text, primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("body", Text, nullable=False),  # the Deployment as JSON
)
deployments_meta = Table(
    "herald_deployments_meta",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("generation", BigInteger, nullable=False),
)
# the one read every process polls: plain SQL on a pooled DBAPI connection (no BEGIN IMMEDIATE)
_GENERATION_SQL = "SELECT generation FROM herald_deployments_meta WHERE id = 1"


def insert_ignore(engine: Engine | Connection, table: Table, **values: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the engine's dialect (SQLite or PostgreSQL)."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).values(**values).on_conflict_do_nothing()
    raise BackendError(f"deployment state cannot use {dialect} databases (SQLite or PostgreSQL)")


class DeploymentStore(StateStore):
    """Deployments by name, each with its latest revision.

    ``DeploymentStore(path)`` keeps them in that SQLite file; ``DeploymentStore(url)`` in the
    database at ``url`` (``postgresql://…``); :meth:`from_settings` picks the one every role of
    a deployment shares (``$HERALD_HOME/serving/state.db`` embedded). The store opens (and
    creates its tables) at once, so a bad URL or file fails at construction.
    """

    metadata = METADATA
    sqlite_file = "serving/state.db"
    what = "deployment state database"
    legacy_tables = {"deployments": deployments}  # older releases' unprefixed SQLite table

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        super().__init__(path)

    def _on_open(self, conn: Connection) -> None:
        conn.execute(insert_ignore(conn, deployments_meta, id=1, generation=0))
        _adopt_legacy_generation(conn)

    def _lock_writes(self, conn: Connection) -> None:
        """Serialise writers: SQLite already holds its write lock (BEGIN IMMEDIATE); on
        PostgreSQL the meta row is the lock, so two processes never both create a name."""
        conn.execute(
            select(deployments_meta.c.id).where(deployments_meta.c.id == 1).with_for_update()
        )

    @staticmethod
    def _bump(conn: Connection) -> None:
        conn.execute(
            update(deployments_meta)
            .where(deployments_meta.c.id == 1)
            .values(generation=deployments_meta.c.generation + 1)
        )

    # reads --------------------------------------------------------------------------------
    def generation(self) -> int:
        """Bumped by every write (cheap change detection across processes)."""
        try:
            raw = self.engine.raw_connection()
        except OperationalError as exc:
            raise self._error(exc) from exc
        try:
            cur = raw.cursor()
            try:
                cur.execute(_GENERATION_SQL)
                row = cur.fetchone()
            finally:
                cur.close()
            raw.rollback()  # PostgreSQL opened a transaction; SQLite (autocommit): no-op
        except Exception as exc:
            raise BackendError(f"{self.what} error ({safe_url(self.url)}): {exc}") from exc
        finally:
            raw.close()
        return int(row[0]) if row else 0

    def get(self, name: str) -> Deployment:
        with self._tx() as c:
            body = c.execute(
                select(deployments.c.body).where(deployments.c.name == name)
            ).scalar_one_or_none()
        if body is None:
            raise _not_found(name)
        return Deployment.model_validate_json(body)

    def find(self, name: str) -> Deployment | None:
        try:
            return self.get(name)
        except DeploymentNotFound:
            return None

    def list(self) -> list[Deployment]:
        with self._tx() as c:
            rows = c.execute(select(deployments.c.body).order_by(deployments.c.name)).scalars()
            bodies = list(rows)
        return [Deployment.model_validate_json(b) for b in bodies]

    # writes -------------------------------------------------------------------------------
    def put(self, dep: Deployment, *, expect_revision: int | None = None) -> Deployment:
        """Store ``dep`` as its name's next revision (returns it with the revision set).

        With ``expect_revision``, nothing is written unless the stored revision is that one
        (compare-and-set); the stored deployment is returned instead.
        """
        with self._lock, self._tx() as c:
            self._lock_writes(c)
            row = c.execute(
                select(deployments.c.revision, deployments.c.body).where(
                    deployments.c.name == dep.name
                )
            ).first()
            current = int(row[0]) if row else 0
            if expect_revision is not None and current != expect_revision:
                if row is None:
                    raise _not_found(dep.name)
                return Deployment.model_validate_json(row[1])
            dep = dep.model_copy(update={"revision": current + 1})
            if row is None:
                c.execute(
                    insert(deployments).values(
                        name=dep.name, revision=dep.revision, body=dep.model_dump_json()
                    )
                )
            else:
                c.execute(
                    update(deployments)
                    .where(deployments.c.name == dep.name)
                    .values(revision=dep.revision, body=dep.model_dump_json())
                )
            self._bump(c)
        return dep

    def update_status(self, name: str, revision: int, status: str, error: str | None) -> None:
        """Record the outcome of applying ``revision`` (ignored if a newer one exists)."""
        with self._lock, self._tx() as c:
            body = c.execute(
                select(deployments.c.body)
                .where(deployments.c.name == name, deployments.c.revision == revision)
                .with_for_update()
            ).scalar_one_or_none()
            if body is None:
                return
            dep = Deployment.model_validate_json(body)
            dep = dep.model_copy(update={"status": status, "error": error})
            c.execute(
                update(deployments)
                .where(deployments.c.name == name, deployments.c.revision == revision)
                .values(body=dep.model_dump_json())
            )

    def delete(self, name: str) -> Deployment:
        with self._lock, self._tx() as c:
            self._lock_writes(c)
            body = c.execute(
                select(deployments.c.body).where(deployments.c.name == name)
            ).scalar_one_or_none()
            if body is None:
                raise _not_found(name)
            c.execute(delete(deployments).where(deployments.c.name == name))
            self._bump(c)
        return Deployment.model_validate_json(body)


def _not_found(name: str) -> DeploymentNotFound:
    return DeploymentNotFound(
        f"no deployment named {name!r} (see GET /v1/deployments or herald deploy list)"
    )


def _adopt_legacy_generation(conn: Connection) -> None:
    """Carry the counter of Herald ≤ this release's ``deployments_meta`` table past the new
    one's (so every process sees a change), once; the rows of ``deployments`` are adopted by
    :func:`~herald.store.shared.adopt_legacy_tables`."""
    if conn.dialect.name != "sqlite":
        return
    found = conn.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'deployments_meta'")
    ).first()
    if found is None:
        return
    old = conn.execute(text("SELECT MAX(generation) FROM deployments_meta")).scalar()
    conn.execute(
        update(deployments_meta)
        .where(deployments_meta.c.id == 1)
        .values(generation=deployments_meta.c.generation + int(old or 0) + 1)
    )
    conn.execute(text("DROP TABLE deployments_meta"))
