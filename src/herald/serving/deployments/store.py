"""Deployment state in ``$HERALD_HOME/serving/state.db`` (SQLite, WAL): shared by the
processes of one host (``herald worker`` writes the desired state, ``herald api`` processes
notice the change and apply it). A ``generation`` counter makes change detection one read."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from herald.serving.deployments.models import Deployment, DeploymentNotFound

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    name TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deployments_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO deployments_meta (id, generation) VALUES (1, 0);
"""


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class DeploymentStore:
    """Deployments by name, each with its latest revision."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        with self._conn() as c:
            c.executescript(SCHEMA)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.path)
        try:
            yield conn
        finally:
            conn.close()

    def generation(self) -> int:
        """Bumped by every write (cheap change detection across processes)."""
        with self._conn() as c:
            return int(c.execute("SELECT generation FROM deployments_meta").fetchone()[0])

    def get(self, name: str) -> Deployment:
        with self._conn() as c:
            row = c.execute("SELECT body FROM deployments WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise DeploymentNotFound(
                f"no deployment named {name!r} (see GET /v1/deployments or herald deploy list)"
            )
        return Deployment.model_validate_json(row[0])

    def find(self, name: str) -> Deployment | None:
        try:
            return self.get(name)
        except DeploymentNotFound:
            return None

    def list(self) -> list[Deployment]:
        with self._conn() as c:
            rows = c.execute("SELECT body FROM deployments ORDER BY name").fetchall()
        return [Deployment.model_validate_json(r[0]) for r in rows]

    def put(self, dep: Deployment, *, expect_revision: int | None = None) -> Deployment:
        """Store ``dep`` as its name's next revision (returns it with the revision set)."""
        with self._lock, self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                row = c.execute(
                    "SELECT revision FROM deployments WHERE name = ?", (dep.name,)
                ).fetchone()
                current = int(row[0]) if row else 0
                if expect_revision is not None and current != expect_revision:
                    c.execute("ROLLBACK")
                    return self.get(dep.name)
                dep = dep.model_copy(update={"revision": current + 1})
                c.execute(
                    "INSERT INTO deployments (name, revision, body) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET revision = excluded.revision, "
                    "body = excluded.body",
                    (dep.name, dep.revision, dep.model_dump_json()),
                )
                c.execute("UPDATE deployments_meta SET generation = generation + 1")
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise
        return dep

    def update_status(self, name: str, revision: int, status: str, error: str | None) -> None:
        """Record the outcome of applying ``revision`` (ignored if a newer one exists)."""
        dep = self.find(name)
        if dep is None or dep.revision != revision:
            return
        dep = dep.model_copy(update={"status": status, "error": error})
        with self._lock, self._conn() as c:
            c.execute(
                "UPDATE deployments SET body = ? WHERE name = ? AND revision = ?",
                (dep.model_dump_json(), name, revision),
            )

    def delete(self, name: str) -> Deployment:
        dep = self.get(name)
        with self._lock, self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            c.execute("DELETE FROM deployments WHERE name = ?", (name,))
            c.execute("UPDATE deployments_meta SET generation = generation + 1")
            c.execute("COMMIT")
        return dep
