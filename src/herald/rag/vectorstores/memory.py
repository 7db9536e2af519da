"""In-memory vector store: exact cosine search and BM25 in pure Python (the test double).

State lives in the process; ``memory://name`` URLs with the same name share it.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from herald.rag.errors import CollectionNotFound, DimensionMismatch
from herald.rag.filters import Condition, matches
from herald.rag.vectorstores.base import Chunk, Hit, VectorStore, check_k, check_vectors

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _norm(v: Sequence[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


@dataclass
class _Collection:
    dimension: int
    chunks: dict[str, Chunk] = field(default_factory=dict)
    unit: dict[str, list[float]] = field(default_factory=dict)


_SHARED: dict[str, dict[str, _Collection]] = {}


class MemoryVectorStore(VectorStore):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.RLock()
        self._cols = _SHARED.setdefault(url, {})

    def _get(self, collection: str) -> _Collection:
        try:
            return self._cols[collection]
        except KeyError:
            raise CollectionNotFound(f"collection {collection!r} does not exist") from None

    def create(self, collection: str, dimension: int) -> None:
        with self._lock:
            old = self._cols.get(collection)
            if old is not None and old.dimension != dimension:
                raise DimensionMismatch(
                    f"collection {collection!r} exists with dimension {old.dimension}, not {dimension}"
                )
            self._cols.setdefault(collection, _Collection(dimension))

    def drop(self, collection: str) -> None:
        with self._lock:
            self._cols.pop(collection, None)

    def dimension(self, collection: str) -> int:
        return self._get(collection).dimension

    def write(
        self, collection: str, chunks: Sequence[Chunk], *, replace: Sequence[str] = ()
    ) -> None:
        with self._lock:
            col = self._get(collection)
            check_vectors(collection, col.dimension, [c.vector for c in chunks])
            self._delete(col, replace)
            for c in chunks:
                col.chunks[c.id] = c
                col.unit[c.id] = _norm(c.vector)

    def _delete(self, col: _Collection, ref_doc_ids: Sequence[str]) -> int:
        gone = set(ref_doc_ids)
        ids = [i for i, c in col.chunks.items() if c.ref_doc_id in gone]
        for i in ids:
            del col.chunks[i]
            del col.unit[i]
        return len(ids)

    def delete(self, collection: str, ref_doc_ids: Sequence[str]) -> int:
        with self._lock:
            return self._delete(self._get(collection), ref_doc_ids)

    def _hit(self, c: Chunk, score: float, with_vectors: bool) -> Hit:
        return Hit(
            c.id,
            c.ref_doc_id,
            c.text,
            score,
            dict(c.metadata),
            list(c.vector) if with_vectors else None,
        )

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
        with self._lock:
            col = self._get(collection)
            check_vectors(collection, col.dimension, [vector])
            q = _norm(vector)
            scored = [
                (sum(a * b for a, b in zip(q, col.unit[i], strict=True)), c)
                for i, c in col.chunks.items()
                if matches(conditions, c.metadata)
            ]
        scored.sort(key=lambda t: -t[0])
        return [self._hit(c, s, with_vectors) for s, c in scored[:k]]

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
        terms = set(words(query))
        with self._lock:
            col = self._get(collection)
            docs = [(c, Counter(words(c.text))) for c in col.chunks.values()]
        if not docs or not terms:
            return []
        n = len(docs)
        avg = sum(sum(tf.values()) for _, tf in docs) / n or 1.0
        df = {t: sum(1 for _, tf in docs if t in tf) for t in terms}
        k1, b = 1.2, 0.75
        scored: list[tuple[float, Chunk]] = []
        for c, tf in docs:
            if not matches(conditions, c.metadata):
                continue
            length = sum(tf.values())
            s = 0.0
            for t in terms:
                f = tf.get(t, 0)
                if f:
                    idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                    s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * length / avg))
            if s > 0:
                scored.append((s, c))
        scored.sort(key=lambda t: -t[0])
        return [self._hit(c, s, with_vectors) for s, c in scored[:k]]

    def fields(self, collection: str) -> set[str]:
        with self._lock:
            return {f for c in self._get(collection).chunks.values() for f in c.metadata}

    def count(self, collection: str) -> int:
        return len(self._get(collection).chunks)

    def scan(self, collection: str) -> Iterator[Chunk]:
        with self._lock:
            chunks = list(self._get(collection).chunks.values())
        yield from chunks
