"""Retrieval: dense, keyword (BM25 / full-text) and hybrid (reciprocal rank fusion), with
metadata filters, MMR diversity and an optional rerank hook.

    from herald.rag.retrieval import retrieve
    hits = retrieve("handbook", "how many vacation days?", k=5, mode="hybrid",
                    filters={"doc_type": "markdown"}, mmr=True)
    hits[0].text, hits[0].score, hits[0].source, hits[0].page

Chains, the API server, sensors and jobs pass their Herald's service (``services.rag``), whose
catalog stays open; stores and embedders are cached per process. Without ``service`` (a script)
a service of this process's settings (environment and ``herald.yaml``) is opened for the call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from herald.rag.errors import RagError
from herald.rag.filters import parse_filters
from herald.rag.vectorstores.base import Hit

if TYPE_CHECKING:
    from herald.rag.service import RagService

Mode = Literal["dense", "keyword", "hybrid"]
MODES = ("dense", "keyword", "hybrid")
RRF_K = 60


@dataclass(frozen=True)
class RetrievedChunk:
    """One retrieved chunk; ``score`` is cosine (dense), BM25 (keyword) or RRF (hybrid)."""

    text: str
    score: float
    ref_doc_id: str
    source: str
    title: str
    page: int | None
    metadata: Mapping[str, Any]
    id: str = ""
    scores: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "score": self.score,
            "scores": dict(self.scores),
            "ref_doc_id": self.ref_doc_id,
            "source": self.source,
            "title": self.title,
            "page": self.page,
            "metadata": dict(self.metadata),
        }


Reranker = Callable[[str, list[RetrievedChunk]], list[RetrievedChunk]]


def _chunk(h: Hit, score: float, scores: dict[str, float]) -> RetrievedChunk:
    page = h.metadata.get("page")
    return RetrievedChunk(
        text=h.text,
        score=score,
        ref_doc_id=h.ref_doc_id,
        source=str(h.metadata.get("source", h.ref_doc_id)),
        title=str(h.metadata.get("title", "")),
        page=page if isinstance(page, int) and not isinstance(page, bool) else None,
        metadata=h.metadata,
        id=h.id,
        scores=scores,
    )


def rrf(rankings: Sequence[Sequence[Hit]], k: int = RRF_K) -> list[tuple[Hit, float]]:
    """Reciprocal rank fusion: ``score(d) = Σ 1 / (k + rank_i(d))`` over the rankings."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, h in enumerate(ranking, 1):
            scores[h.id] = scores.get(h.id, 0.0) + 1.0 / (k + rank)
            first.setdefault(h.id, h)
            if first[h.id].vector is None and h.vector is not None:
                first[h.id] = h
    return sorted(((first[i], s) for i, s in scores.items()), key=lambda t: -t[1])


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(y * y for y in b)) or 1.0
    return dot / (na * nb)


def mmr_order(
    query: Sequence[float], candidates: Sequence[tuple[Hit, float]], k: int, lam: float = 0.5
) -> list[tuple[Hit, float]]:
    """Maximal marginal relevance: trade query similarity against similarity to picks."""
    pool = [(h, s) for h, s in candidates if h.vector is not None]
    rel = {h.id: _cos(query, h.vector) for h, _ in pool if h.vector is not None}
    picked: list[tuple[Hit, float]] = []
    while pool and len(picked) < k:
        best = max(
            pool,
            key=lambda t: (
                lam * rel[t[0].id]
                - (1 - lam)
                * max(
                    (_cos(t[0].vector or (), p.vector or ()) for p, _ in picked),
                    default=0.0,
                )
            ),
        )
        picked.append(best)
        pool.remove(best)
    return picked


def retrieve(
    collection: str,
    query: str,
    *,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Mapping[str, Any] | None = None,
    mmr: bool = False,
    mmr_lambda: float = 0.5,
    fetch_k: int | None = None,
    rerank: Reranker | None = None,
    service: RagService | None = None,
) -> list[RetrievedChunk]:
    """The ``k`` best chunks of ``collection`` for ``query`` (raises CollectionNotFound,
    InvalidFilter, RagError); ``service``: the Herald's (``services.rag``), else one of this
    process's settings, opened for this call."""
    if service is None:
        from herald.rag.service import RagService
        from herald.settings import load_settings

        own = RagService.from_settings(load_settings())
        try:
            return retrieve(collection, query, k=k, mode=mode, filters=filters, mmr=mmr,
                            mmr_lambda=mmr_lambda, fetch_k=fetch_k, rerank=rerank, service=own)  # fmt: skip
        finally:
            own.close()
    if not query or not query.strip():
        raise RagError("query must not be empty")
    if mode not in MODES:
        raise RagError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 1 <= k <= 1000:
        raise RagError(f"k must be within 1..1000, got {k}")
    if not 0.0 <= mmr_lambda <= 1.0:
        raise RagError("mmr_lambda must be within 0..1")
    col = service.get_collection(collection)
    store = service.store_for(col)
    conditions = parse_filters(filters, store.fields(collection))
    n = max(fetch_k or 0, k * 4 if (mmr or mode == "hybrid" or rerank) else k, k)
    dense: list[Hit] = []
    keyword: list[Hit] = []
    qvec: list[float] | None = None
    if mode in ("dense", "hybrid") or mmr:
        qvec = service.embedder_for(col).embed_query(query)
    if mode in ("dense", "hybrid"):
        assert qvec is not None
        dense = store.search(collection, qvec, n, conditions, with_vectors=mmr)
    if mode in ("keyword", "hybrid"):
        keyword = store.keyword_search(collection, query, n, conditions, with_vectors=mmr)
    if mode == "hybrid":
        ranked = rrf([dense, keyword])
        comps = {h.id: {"dense": h.score} for h in dense}
        for h in keyword:
            comps.setdefault(h.id, {})["keyword"] = h.score
    else:
        hits = dense or keyword
        ranked = [(h, h.score) for h in hits]
        comps = {h.id: {mode: h.score} for h in hits}
    if mmr and qvec is not None:
        ranked = mmr_order(qvec, ranked, k if rerank is None else n, mmr_lambda)
    out = [_chunk(h, s, comps.get(h.id, {})) for h, s in ranked]
    if rerank is not None:
        out = rerank(query, out)
    return out[:k]
