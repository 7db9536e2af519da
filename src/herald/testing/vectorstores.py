"""The vector-store contract kit: what every :class:`~herald.rag.vectorstores.base.VectorStore`
adapter must do.

Subclass :class:`VectorStoreContract` and provide a ``make_store`` fixture: a callable returning
a new store object over the test's (initially empty) storage. The kit calls it once for the
store under test and again for "another process" on the same storage, and closes what it
opens::

    class TestQdrantStore(VectorStoreContract):
        @pytest.fixture
        def make_store(self, qdrant_url):
            return lambda: QdrantStore(qdrant_url)

The checks: cosine nearest neighbours with scores sorted best first, upserts and deletes
visible to the next query (also from another instance), atomic document replacement, metadata
filters parsed by :mod:`herald.rag.filters` (vector and keyword search alike), keyword search,
:class:`~herald.rag.errors.DimensionMismatch` before anything is written,
:class:`~herald.rag.errors.CollectionNotFound` for missing collections, isolation between
collections, and a full scan with vectors.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from herald.rag.errors import CollectionNotFound, DimensionMismatch, InvalidFilter
from herald.rag.filters import parse_filters
from herald.rag.vectorstores.base import Chunk, VectorStore

__all__ = ["DIM", "StoreFactory", "VectorStoreContract", "chunk", "vec"]

DIM = 8
StoreFactory = Callable[[], VectorStore]


def vec(seed: int) -> list[float]:
    """A deterministic ``DIM``-dimensional vector."""
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def chunk(i: int, doc: str, text: str | None = None, **meta: Any) -> Chunk:
    """Chunk ``doc:i`` with vector ``vec(i)`` and metadata (ref_doc_id, source, page, **meta)."""
    return Chunk(
        f"{doc}:{i}",
        doc,
        text or f"chunk {i} of {doc}",
        vec(i),
        {"ref_doc_id": doc, "source": f"{doc}.md", "page": i, **meta},
    )


def fill(store: VectorStore, name: str = "c") -> None:
    store.create(name, DIM)
    store.write(
        name,
        [
            chunk(1, "a", "vacation policy and paid time off", dept="hr", year=2023),
            chunk(2, "a", "laptops are replaced every three years", dept="it", year=2024),
            chunk(3, "b", "expense reports are due monthly", dept="finance", year=2025),
            chunk(4, "b", "the security team rotates passwords", dept="it", year=2025),
            chunk(5, "c", "parental leave is sixteen weeks", dept="hr", year=2022),
        ],
    )


class VectorStoreContract:
    """The observable contract of :class:`~herald.rag.vectorstores.base.VectorStore` (see the
    module doc); subclasses provide ``make_store``."""

    @pytest.fixture
    def store(self, make_store: StoreFactory) -> Iterator[VectorStore]:
        s = make_store()
        try:
            yield s
        finally:
            s.close()

    @pytest.fixture
    def other(self, make_store: StoreFactory) -> Iterator[Callable[[], VectorStore]]:
        """Opens more store objects on the same storage (another process in production)."""
        opened: list[VectorStore] = []

        def open_other() -> VectorStore:
            opened.append(make_store())
            return opened[-1]

        yield open_other
        for s in opened:
            s.close()

    def test_nearest_neighbour_and_scores(self, store: VectorStore) -> None:
        fill(store)
        hits = store.search("c", vec(3), 3)
        assert len(hits) == 3
        assert hits[0].id == "b:3"
        assert math.isclose(hits[0].score, 1.0, abs_tol=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert hits[0].metadata["dept"] == "finance" and hits[0].text.startswith("expense")
        assert hits[0].ref_doc_id == "b" and hits[0].vector is None
        assert store.count("c") == 5
        assert store.dimension("c") == DIM

    def test_create_is_idempotent_for_the_same_dimension(self, store: VectorStore) -> None:
        fill(store)
        store.create("c", DIM)
        assert store.count("c") == 5

    def test_upsert_and_delete_visible_to_next_query(self, store: VectorStore) -> None:
        fill(store)
        store.write(
            "c", [Chunk("b:3", "b", "expense reports are weekly now", vec(99), {"dept": "x"})]
        )
        hit = store.search("c", vec(99), 1)[0]
        assert (hit.id, hit.text) == ("b:3", "expense reports are weekly now")
        assert store.count("c") == 5
        texts = {h.text for h in store.search("c", vec(3), 5)}
        assert "expense reports are due monthly" not in texts
        assert store.delete("c", ["a"]) == 2
        assert store.delete("c", ["a", "never-written"]) == 0
        assert {h.ref_doc_id for h in store.search("c", vec(1), 10)} == {"b", "c"}
        assert not store.keyword_search("c", "vacation", 5)

    def test_replace_swaps_a_document_atomically(self, store: VectorStore) -> None:
        fill(store)
        store.write("c", [chunk(7, "a", "the new vacation policy")], replace=["a"])
        docs = [h for h in store.search("c", vec(1), 10) if h.ref_doc_id == "a"]
        assert [h.id for h in docs] == ["a:7"]
        assert store.count("c") == 4

    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            ({"dept": "it"}, {"a:2", "b:4"}),
            ({"dept": {"$in": ["hr", "finance"]}}, {"a:1", "b:3", "c:5"}),
            ({"year": {"$gte": 2024, "$lt": 2025}}, {"a:2"}),
            ({"year": {"$gt": 2022}, "dept": "hr"}, {"a:1"}),
            ({"page": {"$lte": 2}}, {"a:1", "a:2"}),
            ({"dept": {"$ne": "it"}}, {"a:1", "b:3", "c:5"}),
            ({"ref_doc_id": "b"}, {"b:3", "b:4"}),
        ],
    )
    def test_metadata_filters(
        self, store: VectorStore, filters: dict[str, Any], expected: set[str]
    ) -> None:
        fill(store)
        conds = parse_filters(filters, store.fields("c"))
        assert {h.id for h in store.search("c", vec(0), 10, conds)} == expected
        words = "vacation laptops expense security parental"
        kw = {h.id for h in store.keyword_search("c", words, 10, conds)}
        assert kw == expected

    def test_unknown_filter_field_is_refused(self, store: VectorStore) -> None:
        fill(store)
        assert {"dept", "year", "page", "source", "ref_doc_id"} <= store.fields("c")
        with pytest.raises(InvalidFilter, match="unknown filter field 'color'"):
            parse_filters({"color": "red"}, store.fields("c"))
        with pytest.raises(InvalidFilter, match="operator"):
            parse_filters({"year": {"$regex": "x"}}, store.fields("c"))

    def test_keyword_search_ranks_matching_chunks(self, store: VectorStore) -> None:
        fill(store)
        hits = store.keyword_search("c", "passwords security", 3)
        assert hits[0].id == "b:4" and hits[0].score > 0
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert store.keyword_search("c", "zebra", 3) == []

    @pytest.mark.parametrize("query", ["", "  ?!  ", "the a", "_ __ ' \" OR AND NOT ( ) * :"])
    def test_keyword_search_tolerates_odd_queries(self, store: VectorStore, query: str) -> None:
        fill(store)
        hits = store.keyword_search("c", query, 3)
        assert len(hits) <= 3 and all(h.id in {"a:1", "a:2", "b:3", "b:4", "c:5"} for h in hits)

    def test_dimension_mismatch_is_refused_and_index_intact(self, store: VectorStore) -> None:
        fill(store)
        with pytest.raises(DimensionMismatch, match="8-dimensional"):
            store.write("c", [chunk(1, "a"), Chunk("z", "z", "bad", [0.1] * 5, {})])
        with pytest.raises(DimensionMismatch):
            store.search("c", [0.1] * 5, 3)
        with pytest.raises(DimensionMismatch):
            store.create("c", 16)
        with pytest.raises(DimensionMismatch):
            store.write("c", [Chunk("n", "n", "nan", [math.nan] * DIM, {})])
        assert store.count("c") == 5
        assert store.search("c", vec(5), 1)[0].id == "c:5"

    def test_missing_collection_is_not_found(self, store: VectorStore) -> None:
        for call in (
            lambda: store.search("nope", vec(1), 3),
            lambda: store.keyword_search("nope", "x", 3),
            lambda: store.write("nope", [chunk(1, "a")]),
            lambda: store.count("nope"),
            lambda: store.dimension("nope"),
        ):
            with pytest.raises(CollectionNotFound):
                call()
        store.drop("nope")  # no-op

    def test_collections_are_isolated_and_drop_removes(self, store: VectorStore) -> None:
        fill(store, "one")
        store.create("two", DIM)
        store.write("two", [chunk(9, "z", "only in two")])
        assert {h.ref_doc_id for h in store.search("two", vec(1), 10)} == {"z"}
        assert store.count("one") == 5
        store.drop("one")
        with pytest.raises(CollectionNotFound):
            store.count("one")
        assert store.count("two") == 1

    def test_scan_returns_everything_with_vectors(self, store: VectorStore) -> None:
        fill(store)
        chunks = {c.id: c for c in store.scan("c")}
        assert set(chunks) == {"a:1", "a:2", "b:3", "b:4", "c:5"}
        assert chunks["a:1"].ref_doc_id == "a" and chunks["a:1"].metadata["dept"] == "hr"
        assert all(
            math.isclose(x, y, rel_tol=1e-5)
            for x, y in zip(chunks["a:1"].vector, vec(1), strict=True)
        )
        hits = store.search("c", vec(2), 1, with_vectors=True)
        assert hits[0].vector is not None and len(hits[0].vector) == DIM

    def test_writes_from_another_instance_are_visible(
        self, store: VectorStore, other: Callable[[], VectorStore]
    ) -> None:
        """Two store objects on one storage (two processes in production) see each other."""
        fill(store)
        store.search("c", vec(1), 1)  # build this instance's index
        second = other()
        second.write("c", [chunk(42, "new", "fresh chunk")])
        second.delete("c", ["b"])
        ids = {h.id for h in store.search("c", vec(42), 10)}
        assert "new:42" in ids and not any(i.startswith("b:") for i in ids)

    def test_drop_and_recreate_elsewhere_is_seen(
        self, store: VectorStore, other: Callable[[], VectorStore]
    ) -> None:
        """Another process re-creating a collection (re-index) with a new dimension."""
        fill(store)
        store.search("c", vec(1), 1)
        second = other()
        second.drop("c")
        second.create("c", 4)
        second.write("c", [Chunk("n", "n", "new", [1.0, 0.0, 0.0, 0.0], {})])
        assert store.dimension("c") == 4
        assert [h.id for h in store.search("c", [1.0, 0.0, 0.0, 0.0], 3)] == ["n"]
