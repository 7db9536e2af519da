"""Where a store's state lives, so that every Herald process that needs it can see it.

Embedded (SQLite or ``memory://`` event log), every process runs on one host and shares
``HERALD_HOME``: each store keeps its own SQLite file there, as it always did. On PostgreSQL
the roles run apart (``herald api``, ``herald worker``, ``herald serve`` on different hosts or
pods, each with its own ``HERALD_HOME``), so the state they share — deployments, client keys,
evaluations, feedback and monitor state, prompt templates, the request log — lives in that
PostgreSQL database, in tables named ``herald_*``.

A store calls :func:`state_engine` with its SQLite file and its SQLAlchemy ``MetaData``; the
same SQLAlchemy Core code then runs on both. Tables are created if missing (``create_all``
under a PostgreSQL advisory lock, so N processes starting at once do not race).
:class:`StateStore` is the base of those stores: URL or path, engine, opening (with the
adoption of the unprefixed tables of older SQLite files), transactions and error messages.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Self

from sqlalchemy import Connection, Engine, MetaData, Table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from herald.errors import BackendError
from herald.store.engine import make_engine

if TYPE_CHECKING:
    from herald.settings import Settings

SCHEMA_LOCK = 0x48524C44  # pg_advisory_xact_lock key of create_all ("HRLD")


def is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def state_url(settings: Settings, sqlite_file: Path) -> str:
    """The shared PostgreSQL database when Herald runs on one, else ``sqlite:///sqlite_file``."""
    url = settings.resolved_database_url
    if is_postgres(url):
        return url
    return f"sqlite:///{sqlite_file}"


def state_engine(settings: Settings, sqlite_file: Path, metadata: MetaData) -> Engine:
    """An engine on :func:`state_url` with ``metadata``'s tables created."""
    return open_state(state_url(settings, sqlite_file), metadata)


def open_state(url: str, metadata: MetaData) -> Engine:
    """An engine on ``url`` (``sqlite:///file`` or ``postgresql://…``) with the tables of
    ``metadata`` created if missing."""
    engine = make_engine(url)
    path = sqlite_path(url)
    if path is not None and not _sqlite_missing(path, metadata):
        return engine  # the usual case: no DDL, so no write lock to wait for at start
    try:
        for attempt in range(LOCKED_RETRIES + 1):
            try:
                with engine.begin() as conn:
                    if engine.dialect.name == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK})
                    metadata.create_all(conn)
                break
            except OperationalError as exc:  # SQLite: busy beyond its 30 s timeout
                if attempt == LOCKED_RETRIES or "locked" not in str(exc.orig):
                    raise
                time.sleep(1.0 + attempt)
    except Exception:
        engine.dispose()
        raise
    return engine


LOCKED_RETRIES = 3


def sqlite_tables(path: Path) -> set[str] | None:
    """The tables of a SQLite file, read without taking a lock a writer would wait on
    (None when the file does not exist yet)."""
    if not path.is_file():
        return None
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)  # autocommit: a bare read
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        conn.close()
    return {str(r[0]) for r in rows}


def _sqlite_missing(path: Path, metadata: MetaData) -> bool:
    tables = sqlite_tables(path)
    return tables is None or not set(metadata.tables) <= tables


# the plumbing every state store shares -------------------------------------------------------
def state_target(target: Path | str) -> str:
    """A database URL for ``target``: a ``Path`` (or a plain path string) is that SQLite file;
    URLs (``sqlite:///…``, ``postgresql://…``) pass through."""
    if isinstance(target, str) and "://" in target:
        return target
    return f"sqlite:///{Path(target).expanduser()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///file`` URL; None for other databases (and in-memory SQLite)."""
    if url.split(":", 1)[0].split("+", 1)[0] != "sqlite":
        return None
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def safe_url(url: str) -> str:
    """``url`` with its password masked (``***``), for messages and logs; the scheme, user,
    host, port, path and query stay, as they help find what is wrong. Works for any
    ``scheme://user:password@host/…?query`` URL (PostgreSQL, NATS, S3, …); a URL without a
    password, or a plain path, comes back unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if at != -1:
            end = min(end, at)
    netloc, tail = rest[:end], rest[end:]
    userinfo, at_sign, hostport = netloc.rpartition("@")
    if not at_sign or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{hostport}{tail}"


def adopt_legacy_tables(conn: Connection, tables: Mapping[str, Table]) -> list[str]:
    """Move the rows of the old, unprefixed tables of a SQLite file (``{old_name: new_table}``)
    into the ``herald_*`` tables that replaced them, once: the columns both have are copied
    (rows whose key is already there are kept as they are), then the old table is dropped.
    Returns the names adopted. A no-op on other databases (they never had the old tables).

    Call it in the store's opening transaction: on SQLite that is ``BEGIN IMMEDIATE``, so one
    process moves the rows and the others find the old tables gone."""
    if conn.dialect.name != "sqlite":
        return []
    names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars())
    adopted = []
    for old, new in tables.items():
        if old not in names:
            continue
        have = {row[1] for row in conn.exec_driver_sql(f'PRAGMA table_info("{old}")')}
        cols = ", ".join(f'"{c.name}"' for c in new.columns if c.name in have)
        if cols:
            conn.exec_driver_sql(
                f'INSERT OR IGNORE INTO "{new.name}" ({cols}) SELECT {cols} FROM "{old}"'
            )
        conn.exec_driver_sql(f'DROP TABLE "{old}"')
        adopted.append(old)
    return adopted


class StateStore:
    """Base of the stores of shared state (deployments, client keys, monitoring, prompts,
    evaluations): a database URL, an engine opened once (tables created, legacy SQLite tables
    adopted, then :meth:`_on_open`), :meth:`close`, and transactions whose database errors
    become :class:`~herald.errors.BackendError` naming the (password-masked) URL.

    A subclass sets :attr:`metadata`, :attr:`sqlite_file` (relative to ``HERALD_HOME``),
    :attr:`what` (how messages name the database) and, if it had them, :attr:`legacy_tables`.
    ``Store(path)`` keeps the state in that SQLite file, ``Store(url)`` in the database at
    ``url``; :meth:`from_settings` picks the one every role of a Herald shares.
    """

    metadata: ClassVar[MetaData]
    sqlite_file: ClassVar[str]  # e.g. "serving/state.db", under HERALD_HOME
    what: ClassVar[str] = "state database"  # e.g. "deployment state database"
    legacy_tables: ClassVar[Mapping[str, Table]] = {}  # {old SQLite table: new table}
    eager: ClassVar[bool] = True  # open in __init__ (a bad URL or file fails there)

    def __init__(self, target: Path | str) -> None:
        self.url = state_target(target)
        self.path: Path | None = sqlite_path(self.url)
        self._open_lock = threading.Lock()
        self._engine: Engine | None = None
        self._reader: Engine | None = None
        if self.eager:
            self._engine = self._open()

    @classmethod
    def default_path(cls, home: Path | str) -> Path:
        """The SQLite file of an embedded Herald home."""
        return Path(home) / cls.sqlite_file

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The store every role of this Herald shares: its PostgreSQL database when it runs on
        one, else the SQLite file under ``HERALD_HOME``."""
        return cls(state_url(settings, cls.default_path(settings.home)))

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is None:
            with self._open_lock:
                if self._engine is None:
                    self._engine = self._open()
                engine = self._engine
        return engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _open(self) -> Engine:
        try:
            engine = open_state(self.url, self.metadata)
        except OperationalError as exc:
            raise BackendError(
                f"cannot open the {self.what} {safe_url(self.url)}: {exc.orig} "
                "(check the database URL, that the server is up, and the file's permissions)"
            ) from exc
        try:
            if self._needs_setup(engine):
                with engine.begin() as conn:
                    adopt_legacy_tables(conn, self.legacy_tables)
                    self._on_open(conn)
        except Exception:
            engine.dispose()
            raise
        return engine

    def _needs_setup(self, engine: Engine) -> bool:
        """Whether opening needs a transaction: a setup hook, or old SQLite tables to adopt
        (checked without a lock, so N processes opening an existing file wait on nothing)."""
        if type(self)._on_open is not StateStore._on_open:
            return True
        if engine.dialect.name != "sqlite" or self.path is None or not self.legacy_tables:
            return False
        return bool(set(self.legacy_tables) & (sqlite_tables(self.path) or set()))

    def _on_open(self, conn: Connection) -> None:
        """Per-store setup in the opening transaction (after the tables exist)."""

    def close(self) -> None:
        """Release database connections (the store reopens on next use)."""
        with self._open_lock:
            for engine in (self._engine, self._reader):
                if engine is not None:
                    engine.dispose()
            self._engine = self._reader = None

    def _error(self, exc: OperationalError) -> BackendError:
        return BackendError(f"{self.what} error ({safe_url(self.url)}): {exc.orig}")

    @property
    def read_engine(self) -> Engine:
        """For reads: on SQLite an engine whose statements run in autocommit (a WAL read takes
        no lock a writer waits on; the main engine starts every transaction with BEGIN
        IMMEDIATE), elsewhere the main engine."""
        engine = self.engine
        if engine.dialect.name != "sqlite":
            return engine
        reader = self._reader
        if reader is None:
            with self._open_lock:
                if self._reader is None:
                    self._reader = autocommit_sqlite(engine)
                reader = self._reader
        return reader

    @contextmanager
    def _connection(self, *, begin: bool) -> Iterator[Connection]:
        try:
            with self.engine.begin() if begin else self.read_engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise self._error(exc) from exc

    def _tx(self) -> AbstractContextManager[Connection]:
        """One transaction (committed when the block ends)."""
        return self._connection(begin=True)

    def _read(self) -> AbstractContextManager[Connection]:
        """A connection for reads (no write lock taken on SQLite)."""
        return self._connection(begin=False)


def autocommit_sqlite(engine: Engine) -> Engine:
    """A second engine on ``engine``'s SQLite file whose connections run every statement in
    autocommit (no BEGIN at all): reads see the latest commit and hold no lock afterwards."""
    from sqlalchemy import create_engine, event

    reader = create_engine(
        engine.url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=4,
        isolation_level="AUTOCOMMIT",
    )

    @event.listens_for(reader, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=30000")

    return reader
