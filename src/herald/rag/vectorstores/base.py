"""The vector-store port: collections of chunks with vectors, text and metadata.

Every adapter passes the same contract kit (``herald.testing.VectorStoreContract``):
writes and deletes are visible to the very next search (in any process sharing the store),
metadata filters use :mod:`herald.rag.filters`, a vector of the wrong length raises
:class:`DimensionMismatch` before anything is written, and a missing collection raises
:class:`CollectionNotFound`.

Stores are chosen by URL scheme (:func:`open_vector_store`): ``memory://`` (test double),
``local:///path`` (the embedded default: usearch HNSW + SQLite, see
``docs/decisions/0002-embedded-vector-store.md``), ``postgresql://…`` (pgvector). Third parties
register more under the ``herald.vectorstores`` entry-point group.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from herald.adapters import Adapters
from herald.errors import BackendUnavailable
from herald.rag.errors import DimensionMismatch
from herald.rag.filters import Condition


@dataclass(frozen=True)
class Chunk:
    """One stored chunk. ``id`` is unique in the collection; ``ref_doc_id`` names its document."""

    id: str
    ref_doc_id: str
    text: str
    vector: Sequence[float]
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """A search result: higher ``score`` is better (cosine similarity or keyword score)."""

    id: str
    ref_doc_id: str
    text: str
    score: float
    metadata: Mapping[str, Any]
    vector: Sequence[float] | None = None


class VectorStore(ABC):
    """Collections of chunks; each collection has a fixed vector dimension."""

    url: str = ""

    @abstractmethod
    def create(self, collection: str, dimension: int) -> None:
        """Create an empty collection (no-op if it exists with the same dimension)."""

    @abstractmethod
    def drop(self, collection: str) -> None:
        """Remove a collection and all its chunks (no-op if missing)."""

    @abstractmethod
    def dimension(self, collection: str) -> int:
        """The collection's vector dimension (raises CollectionNotFound)."""

    @abstractmethod
    def write(
        self, collection: str, chunks: Sequence[Chunk], *, replace: Sequence[str] = ()
    ) -> None:
        """Atomically delete every chunk of the ``replace`` documents, then upsert ``chunks``."""

    @abstractmethod
    def delete(self, collection: str, ref_doc_ids: Sequence[str]) -> int:
        """Delete every chunk of these documents; returns how many chunks went."""

    @abstractmethod
    def search(
        self,
        collection: str,
        vector: Sequence[float],
        k: int,
        conditions: Sequence[Condition] = (),
        *,
        with_vectors: bool = False,
    ) -> list[Hit]:
        """The ``k`` nearest chunks by cosine similarity that pass ``conditions``."""

    @abstractmethod
    def keyword_search(
        self,
        collection: str,
        query: str,
        k: int,
        conditions: Sequence[Condition] = (),
        *,
        with_vectors: bool = False,
    ) -> list[Hit]:
        """The ``k`` best chunks by full-text relevance (BM25 or the database's ranking)."""

    @abstractmethod
    def fields(self, collection: str) -> set[str]:
        """Metadata field names present in the collection (for filter validation)."""

    @abstractmethod
    def count(self, collection: str) -> int:
        """Number of chunks."""

    @abstractmethod
    def scan(self, collection: str) -> Iterator[Chunk]:
        """Every chunk (vectors included), for re-indexing and export."""

    def close(self) -> None:
        """Release connections and flush indexes."""


# helpers shared by adapters ---------------------------------------------------------------
def check_vectors(collection: str, dimension: int, vectors: Sequence[Sequence[float]]) -> None:
    """Refuse vectors of the wrong length or with NaN/inf before anything is written."""
    for v in vectors:
        if len(v) != dimension:
            raise DimensionMismatch(
                f"collection {collection!r} stores {dimension}-dimensional vectors but got "
                f"{len(v)}; embed with the collection's model or re-index it "
                "(collection.reindex.requested)",
                details={"expected": dimension, "got": len(v)},
            )
        if not all(math.isfinite(x) for x in v):
            raise DimensionMismatch(f"collection {collection!r}: vector contains NaN or inf")


def check_k(k: int) -> int:
    if k < 1:
        raise ValueError("k must be >= 1")
    return k


# registry by URL scheme ------------------------------------------------------------------
Factory = Callable[[str], VectorStore]
_BUILTIN: dict[str, str] = {
    "memory": "herald.rag.vectorstores.memory:MemoryVectorStore",
    "local": "herald.rag.vectorstores.local:LocalVectorStore",
    "postgresql": "herald.rag.vectorstores.pgvector:PgVectorStore",
    "postgres": "herald.rag.vectorstores.pgvector:PgVectorStore",
    "postgresql+psycopg": "herald.rag.vectorstores.pgvector:PgVectorStore",
}
_cache: dict[str, VectorStore] = {}
_lock = threading.Lock()


VECTOR_STORES: Adapters[Factory] = Adapters(
    "vector store", "herald.vectorstores", _BUILTIN, check=callable
)


def store_factory(url: str) -> Factory:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in VECTOR_STORES:
        raise BackendUnavailable(
            f"no vector store for URL {url!r}; use one of the schemes: "
            f"{', '.join(VECTOR_STORES.names())} "
            "(e.g. local:///var/lib/herald/rag or postgresql://user@host/db)"
        )
    return VECTOR_STORES.load(scheme)


def open_vector_store(url: str, *, cached: bool = True) -> VectorStore:
    """The store at ``url``; one shared instance per URL and process when ``cached``."""
    if not cached:
        return store_factory(url)(url)
    with _lock:
        store = _cache.get(url)
        if store is None:
            store = _cache[url] = store_factory(url)(url)
        return store


def close_cached_stores() -> None:
    with _lock:
        stores = list(_cache.values())
        _cache.clear()
    for s in stores:
        s.close()
