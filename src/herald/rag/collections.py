"""The collection catalog: each collection's embedding model, dimension and chunking config,
and the documents it holds (content hashes for incremental ingestion).

Stored with SQLAlchemy Core in its own tables (``rag_collections``, ``rag_documents``), by
default in ``$HERALD_HOME/rag/catalog.db``; any SQLAlchemy URL works (PostgreSQL for several
hosts). The vector store holds the chunks; this catalog holds what describes them.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field

from herald.errors import ConfigurationError
from herald.rag.errors import CollectionExists, CollectionNotFound

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

meta = sa.MetaData()
collections_t = sa.Table(
    "rag_collections",
    meta,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("embedding_model", sa.Text, nullable=False),
    sa.Column("dimension", sa.Integer, nullable=False),
    sa.Column("chunk_size", sa.Integer, nullable=False),
    sa.Column("chunk_overlap", sa.Integer, nullable=False),
    sa.Column("store_url", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("status", sa.String(32), nullable=False, default="ready"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
documents_t = sa.Table(
    "rag_documents",
    meta,
    sa.Column("collection", sa.String(128), primary_key=True),
    sa.Column("ref_doc_id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False, default=""),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("rag_documents_source", documents_t.c.collection, documents_t.c.source)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigurationError(
            f"invalid collection name {name!r}: 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _now() -> datetime:
    return datetime.now(UTC)


class Collection(BaseModel):
    name: str
    embedding_model: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    store_url: str
    description: str = ""
    status: str = "ready"
    created_at: datetime
    updated_at: datetime
    documents: int = 0
    chunks: int = 0

    @property
    def config_hash(self) -> str:
        """Changes when re-chunking or re-embedding would change the stored chunks."""
        key = json.dumps([self.embedding_model, self.chunk_size, self.chunk_overlap])
        return hashlib.sha256(key.encode()).hexdigest()[:16]


class DocumentInfo(BaseModel):
    ref_doc_id: str
    source: str
    title: str = ""
    content_hash: str
    chunks: int
    metadata: dict[str, Any] = Field(default_factory=dict)
    updated_at: datetime


class Catalog:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        parsed = sa.engine.make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
        connect_args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine = sa.create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
        if url.startswith("sqlite"):

            @sa.event.listens_for(self.engine, "connect")
            def _wal(dbapi_conn: Any, _rec: Any) -> None:
                dbapi_conn.execute("PRAGMA journal_mode=WAL")

        self._lock = threading.Lock()
        meta.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # collections ----------------------------------------------------------------------------
    def _collection(self, row: Any, counts: tuple[int, int] = (0, 0)) -> Collection:
        return Collection(
            **{col.name: row._mapping[col.name] for col in collections_t.c},
            documents=counts[0],
            chunks=counts[1],
        )

    def add(self, c: Collection) -> Collection:
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(collections_t.c.name).where(collections_t.c.name == c.name)
            ).first()
            if exists:
                raise CollectionExists(f"collection {c.name!r} already exists")
            conn.execute(
                collections_t.insert().values(**c.model_dump(exclude={"documents", "chunks"}))
            )
        return c

    def get(self, name: str) -> Collection:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(collections_t).where(collections_t.c.name == name)).first()
            if row is None:
                raise CollectionNotFound(
                    f"collection {name!r} does not exist (create it with POST /v1/collections "
                    "or `herald rag create`)"
                )
            counts = conn.execute(
                sa.select(
                    sa.func.count(), sa.func.coalesce(sa.func.sum(documents_t.c.chunks), 0)
                ).where(documents_t.c.collection == name)
            ).one()
        return self._collection(row, (int(counts[0]), int(counts[1])))

    def all(self) -> list[Collection]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(collections_t).order_by(collections_t.c.name)).all()
            counts = {
                r[0]: (int(r[1]), int(r[2]))
                for r in conn.execute(
                    sa.select(
                        documents_t.c.collection,
                        sa.func.count(),
                        sa.func.coalesce(sa.func.sum(documents_t.c.chunks), 0),
                    ).group_by(documents_t.c.collection)
                )
            }
        return [self._collection(r, counts.get(r.name, (0, 0))) for r in rows]

    def update(self, name: str, **values: Any) -> Collection:
        with self.engine.begin() as conn:
            n = conn.execute(
                collections_t.update()
                .where(collections_t.c.name == name)
                .values(**values, updated_at=_now())
            ).rowcount
        if not n:
            raise CollectionNotFound(f"collection {name!r} does not exist")
        return self.get(name)

    def remove(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(documents_t.delete().where(documents_t.c.collection == name))
            conn.execute(collections_t.delete().where(collections_t.c.name == name))

    # documents ------------------------------------------------------------------------------
    def document(self, collection: str, ref_doc_id: str) -> tuple[str, str] | None:
        """``(content_hash, config_hash)`` of a stored document, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(documents_t.c.content_hash, documents_t.c.config_hash).where(
                    documents_t.c.collection == collection,
                    documents_t.c.ref_doc_id == ref_doc_id,
                )
            ).first()
        return (row[0], row[1]) if row else None

    def put_document(self, collection: str, info: DocumentInfo, config_hash: str) -> None:
        values = {
            "source": info.source,
            "title": info.title,
            "content_hash": info.content_hash,
            "config_hash": config_hash,
            "chunks": info.chunks,
            "metadata": json.dumps(info.metadata, default=str),
            "updated_at": info.updated_at,
        }
        with self.engine.begin() as conn:
            n = conn.execute(
                documents_t.update()
                .where(
                    documents_t.c.collection == collection,
                    documents_t.c.ref_doc_id == info.ref_doc_id,
                )
                .values(**values)
            ).rowcount
            if not n:
                conn.execute(
                    documents_t.insert().values(
                        collection=collection, ref_doc_id=info.ref_doc_id, **values
                    )
                )
            conn.execute(
                collections_t.update()
                .where(collections_t.c.name == collection)
                .values(updated_at=_now())
            )

    def remove_documents(self, collection: str, ref_doc_ids: Sequence[str]) -> int:
        with self.engine.begin() as conn:
            n = 0
            for start in range(0, len(ref_doc_ids), 500):
                n += conn.execute(
                    documents_t.delete().where(
                        documents_t.c.collection == collection,
                        documents_t.c.ref_doc_id.in_(list(ref_doc_ids[start : start + 500])),
                    )
                ).rowcount
            if n:
                conn.execute(
                    collections_t.update()
                    .where(collections_t.c.name == collection)
                    .values(updated_at=_now())
                )
        return n

    def documents(
        self,
        collection: str,
        *,
        source_prefix: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[DocumentInfo]:
        q = sa.select(documents_t).where(documents_t.c.collection == collection)
        if source_prefix:
            q = q.where(documents_t.c.source.startswith(source_prefix, autoescape=True))
        q = q.order_by(documents_t.c.ref_doc_id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            DocumentInfo(
                ref_doc_id=r.ref_doc_id,
                source=r.source,
                title=r.title,
                content_hash=r.content_hash,
                chunks=r.chunks,
                metadata=json.loads(r.metadata),
                updated_at=r.updated_at,
            )
            for r in rows
        ]
