"""The embedder contract kit: what every :class:`~herald.rag.embeddings.base.Embedder` does.

Subclass :class:`EmbedderContract` and provide an ``embedder`` fixture (scope it to the class
or module when the model is slow to load)::

    class TestCohereEmbedder(EmbedderContract):
        @pytest.fixture(scope="class")
        @classmethod
        def embedder(cls):
            return CohereEmbedder("embed-english-v3.0", transport=recorded_transport())

The checks: ``dimension`` and ``ref`` are set, one unit-length vector of that dimension per
text, in input order, the same text always gets the same vector whether embedded alone or in a
batch (batching is internal), ``embed([])`` is ``[]``, ``embed_query`` agrees in shape, token
counts are non-negative integers that grow with the text, and a text is nearer to a text
sharing its words than to an unrelated one.

Declared capability: ``semantic`` (default ``True``): vectors reflect meaning or at least
shared words, so cosine search works; an embedder for which that is false (a random
projection) sets it to ``False`` and the ranking check is replaced by the shape checks.
"""

from __future__ import annotations

import math
from typing import ClassVar

from herald.rag.embeddings.base import Embedder
from herald.testing._support import cosine, norm

__all__ = ["EmbedderContract"]

TEXTS = [
    "Employees get twenty seven vacation days a year.",
    "The vacation policy grants paid days off to employees.",
    "Laptops are replaced every three years by the IT team.",
    "Paris is the capital of France.",
    "Ünïcode, emoji 🚀 and punctuation: fine!",
]


def _close(a: list[float], b: list[float], tol: float = 1e-4) -> bool:
    return all(math.isclose(x, y, abs_tol=tol) for x, y in zip(a, b, strict=True))


class EmbedderContract:
    """The observable contract of :class:`~herald.rag.embeddings.base.Embedder` (see the module
    doc); subclasses provide an ``embedder`` fixture."""

    semantic: ClassVar[bool] = True
    #: texts embedded in one call by the batching check: more than the adapter's batch size
    batch_probe: ClassVar[int] = 20

    def test_reference_and_dimension_are_declared(self, embedder: Embedder) -> None:
        assert isinstance(embedder.ref, str) and embedder.ref
        assert isinstance(embedder.dimension, int) and embedder.dimension > 0
        assert embedder.max_tokens is None or embedder.max_tokens > 0

    def test_one_unit_vector_per_text_in_order(self, embedder: Embedder) -> None:
        vectors = embedder.embed(TEXTS)
        assert len(vectors) == len(TEXTS)
        for v in vectors:
            assert len(v) == embedder.dimension
            assert all(isinstance(x, float) and math.isfinite(x) for x in v)
            assert math.isclose(norm(v), 1.0, abs_tol=1e-3)
        # order: each position's vector is that text's own vector
        reversed_vectors = embedder.embed(TEXTS[::-1])
        for v, w in zip(vectors, reversed_vectors[::-1], strict=True):
            assert _close(v, w)

    def test_batching_does_not_change_vectors(self, embedder: Embedder) -> None:
        many = [f"document {i} about vacation days and laptops" for i in range(self.batch_probe)]
        batched = embedder.embed(many)
        assert len(batched) == self.batch_probe
        for i in (0, self.batch_probe // 2, self.batch_probe - 1):
            assert _close(batched[i], embedder.embed([many[i]])[0])
        assert _close(embedder.embed(["same text"])[0], embedder.embed(["same text"])[0])

    def test_empty_input_gives_no_vectors(self, embedder: Embedder) -> None:
        assert embedder.embed([]) == []

    def test_query_vectors_share_the_space(self, embedder: Embedder) -> None:
        q = embedder.embed_query("How many vacation days do employees get?")
        assert len(q) == embedder.dimension
        assert math.isclose(norm(q), 1.0, abs_tol=1e-3)
        if self.semantic:
            near, far = embedder.embed([TEXTS[0], TEXTS[3]])
            assert cosine(q, near) > cosine(q, far)

    def test_similar_texts_are_nearer_than_unrelated_ones(self, embedder: Embedder) -> None:
        a, b, c = embedder.embed(TEXTS[:3])
        if self.semantic:
            assert cosine(a, b) > cosine(a, c)
        else:  # declared non-semantic: only the shape is part of the contract
            assert len({len(a), len(b), len(c)}) == 1

    def test_token_counts(self, embedder: Embedder) -> None:
        short = embedder.count_tokens("hello world")
        longer = embedder.count_tokens("hello world, and a good deal more text than before")
        assert isinstance(short, int) and 0 < short < longer
        assert embedder.count_tokens("") >= 0
