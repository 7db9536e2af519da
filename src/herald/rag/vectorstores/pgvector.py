"""pgvector store: one PostgreSQL table per collection (HNSW cosine index, JSONB, tsvector).

    postgresql://user:pass@host:5432/db

Tables: ``herald_rag_collections`` (name → table, dimension), ``herald_rag_fields`` (metadata
field names per collection) and one ``rag_<hash>`` table per collection with an HNSW index
(``vector_cosine_ops``), a GIN index on the metadata and a generated ``tsvector`` column for
keyword search (``ts_rank_cd``, the database's full-text ranking). Filtered vector searches use
pgvector's iterative index scans (0.8+) so a selective filter still returns ``k`` rows.
Every write is one transaction, so it is visible to the very next query from any process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from herald.errors import BackendUnavailable
from herald.rag.errors import CollectionNotFound, DimensionMismatch
from herald.rag.filters import Condition
from herald.rag.vectorstores._sql import pg_where
from herald.rag.vectorstores.base import Chunk, Hit, VectorStore, check_k, check_vectors
from herald.rag.vectorstores.local import check_collection_name
from herald.store.shared import safe_url

try:
    import psycopg
    from psycopg import sql
except ImportError as exc:  # pragma: no cover - depends on the install
    raise BackendUnavailable(
        f"the pgvector store needs psycopg ({exc}); pip install 'herald[postgres]'"
    ) from exc

SETUP = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS herald_rag_collections (
    name TEXT PRIMARY KEY, tbl TEXT NOT NULL UNIQUE, dimension INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS herald_rag_fields (
    collection TEXT NOT NULL REFERENCES herald_rag_collections(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (collection, name)
);
"""


def _vec(v: Sequence[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in v) + "]"


def _parse_vec(text: str) -> list[float]:
    return [float(x) for x in text.strip("[]").split(",") if x]


class PgVectorStore(VectorStore):
    def __init__(self, url: str) -> None:
        self.url = url
        dsn = re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql://", url)
        self._lock = threading.RLock()
        try:
            self._conn = psycopg.connect(dsn, autocommit=True)
            # one statement per call: a concurrent CREATE EXTENSION in another session is fine
            for stmt in filter(None, (s.strip() for s in SETUP.split(";"))):
                with contextlib.suppress(psycopg.errors.UniqueViolation):  # creation race
                    self._conn.execute(stmt)
        except psycopg.Error as exc:
            raise BackendUnavailable(f"pgvector store at {safe_url(url)}: {exc}") from exc
        self._tables: dict[str, tuple[str, int]] = {}

    # collections ----------------------------------------------------------------------------
    def _info(self, collection: str) -> tuple[sql.Identifier, int]:
        row = self._conn.execute(
            "SELECT tbl, dimension FROM herald_rag_collections WHERE name = %s", (collection,)
        ).fetchone()
        if row is None:
            raise CollectionNotFound(f"collection {collection!r} does not exist")
        return sql.Identifier(row[0]), int(row[1])

    def create(self, collection: str, dimension: int) -> None:
        check_collection_name(collection)
        if dimension < 1:
            raise DimensionMismatch("dimension must be >= 1")
        tbl = "rag_" + hashlib.sha1(collection.encode(), usedforsecurity=False).hexdigest()[:24]
        t = sql.Identifier(tbl)
        with self._lock, self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (collection,))
            row = self._conn.execute(
                "SELECT dimension FROM herald_rag_collections WHERE name = %s", (collection,)
            ).fetchone()
            if row is not None:
                if int(row[0]) != dimension:
                    raise DimensionMismatch(
                        f"collection {collection!r} exists with dimension {row[0]}, not {dimension}"
                    )
                return
            self._conn.execute(
                sql.SQL(
                    "CREATE TABLE {t} (key BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
                    "ref_doc_id TEXT NOT NULL, text TEXT NOT NULL, "
                    "metadata JSONB NOT NULL DEFAULT '{{}}', embedding vector({d}) NOT NULL, "
                    "tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED)"
                ).format(t=t, d=sql.Literal(dimension))
            )
            for ddl in (
                "CREATE INDEX ON {t} (ref_doc_id)",
                "CREATE INDEX ON {t} USING hnsw (embedding vector_cosine_ops)",
                "CREATE INDEX ON {t} USING gin (metadata jsonb_path_ops)",
                "CREATE INDEX ON {t} USING gin (tsv)",
            ):
                self._conn.execute(sql.SQL(ddl).format(t=t))
            self._conn.execute(
                "INSERT INTO herald_rag_collections VALUES (%s, %s, %s)",
                (collection, tbl, dimension),
            )

    def drop(self, collection: str) -> None:
        with self._lock, self._conn.transaction():
            row = self._conn.execute(
                "DELETE FROM herald_rag_collections WHERE name = %s RETURNING tbl", (collection,)
            ).fetchone()
            if row is not None:
                self._conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {t}").format(t=sql.Identifier(row[0]))
                )

    def dimension(self, collection: str) -> int:
        with self._lock:
            return self._info(collection)[1]

    # writes ---------------------------------------------------------------------------------
    def write(
        self, collection: str, chunks: Sequence[Chunk], *, replace: Sequence[str] = ()
    ) -> None:
        with self._lock:
            t, dim = self._info(collection)
            check_vectors(collection, dim, [c.vector for c in chunks])
            with self._conn.transaction(), self._conn.cursor() as cur:
                if replace:
                    cur.execute(
                        sql.SQL("DELETE FROM {t} WHERE ref_doc_id = ANY(%s)").format(t=t),
                        (list(replace),),
                    )
                cur.executemany(
                    sql.SQL(
                        "INSERT INTO {t} (id, ref_doc_id, text, metadata, embedding) "
                        "VALUES (%s, %s, %s, %s::jsonb, %s::vector) ON CONFLICT (id) DO UPDATE "
                        "SET ref_doc_id = excluded.ref_doc_id, text = excluded.text, "
                        "metadata = excluded.metadata, embedding = excluded.embedding"
                    ).format(t=t),
                    [
                        (c.id, c.ref_doc_id, c.text, json.dumps(dict(c.metadata)), _vec(c.vector))
                        for c in chunks
                    ],
                )
                names = sorted({n for c in chunks for n in c.metadata})
                if names:
                    cur.executemany(
                        "INSERT INTO herald_rag_fields VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        [(collection, n) for n in names],
                    )

    def delete(self, collection: str, ref_doc_ids: Sequence[str]) -> int:
        with self._lock:
            t, _ = self._info(collection)
            cur = self._conn.execute(
                sql.SQL("DELETE FROM {t} WHERE ref_doc_id = ANY(%s)").format(t=t),
                (list(ref_doc_ids),),
            )
            return cur.rowcount

    # reads ----------------------------------------------------------------------------------
    @staticmethod
    def _hit(row: tuple[Any, ...], with_vectors: bool) -> Hit:
        vector = _parse_vec(row[5]) if with_vectors else None
        return Hit(row[0], row[1], row[2], float(row[4]), row[3], vector)

    def search(
        self,
        collection: str,
        vector: Sequence[float],
        k: int,
        conditions: Sequence[Condition] = (),
        *,
        with_vectors: bool = False,
    ) -> list[Hit]:
        check_k(k)
        where, params = pg_where(conditions)
        extra = sql.SQL(", embedding::text") if with_vectors else sql.SQL("")
        with self._lock:
            t, dim = self._info(collection)
            check_vectors(collection, dim, [vector])
            q = _vec(vector)
            with self._conn.transaction():
                self._conn.execute("SET LOCAL hnsw.ef_search = 100")
                self._conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                rows = self._conn.execute(
                    sql.SQL(
                        "SELECT id, ref_doc_id, text, metadata, 1 - (embedding <=> %s::vector)"
                        "{extra} FROM {t} WHERE {where} ORDER BY embedding <=> %s::vector LIMIT %s"
                    ).format(extra=extra, t=t, where=sql.SQL(where)),
                    [q, *params, q, k],
                ).fetchall()
        return [self._hit(r, with_vectors) for r in rows]

    def keyword_search(
        self,
        collection: str,
        query: str,
        k: int,
        conditions: Sequence[Condition] = (),
        *,
        with_vectors: bool = False,
    ) -> list[Hit]:
        check_k(k)
        terms = sorted({w.lower() for w in re.findall(r"\w+", query)})
        if not terms:
            return []
        where, params = pg_where(conditions)
        extra = sql.SQL(", embedding::text") if with_vectors else sql.SQL("")
        with self._lock:
            t, _ = self._info(collection)
            rows = self._conn.execute(
                sql.SQL(
                    "SELECT id, ref_doc_id, text, metadata, ts_rank_cd(tsv, q){extra} "
                    "FROM {t}, to_tsquery('english', %s) q WHERE tsv @@ q AND {where} "
                    "ORDER BY 5 DESC, key LIMIT %s"
                ).format(extra=extra, t=t, where=sql.SQL(where)),
                [" | ".join(terms), *params, k],
            ).fetchall()
        return [self._hit(r, with_vectors) for r in rows]

    def fields(self, collection: str) -> set[str]:
        with self._lock:
            self._info(collection)
            rows = self._conn.execute(
                "SELECT name FROM herald_rag_fields WHERE collection = %s", (collection,)
            ).fetchall()
        return {r[0] for r in rows}

    def count(self, collection: str) -> int:
        with self._lock:
            t, _ = self._info(collection)
            row = self._conn.execute(sql.SQL("SELECT count(*) FROM {t}").format(t=t)).fetchone()
        return int(row[0]) if row else 0

    def scan(self, collection: str) -> Iterator[Chunk]:
        with self._lock:
            t, _ = self._info(collection)
            rows = self._conn.execute(
                sql.SQL(
                    "SELECT id, ref_doc_id, text, metadata, embedding::text FROM {t} ORDER BY key"
                ).format(t=t)
            ).fetchall()
        for r in rows:
            yield Chunk(r[0], r[1], r[2], _parse_vec(r[4]), r[3])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
