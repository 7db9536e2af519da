"""The served-model reranker (``/v1/rerank`` wire format of vLLM, TEI, Jina, Cohere)."""

from __future__ import annotations

import json

import httpx
import pytest

from herald.errors import BackendError
from herald.rag.rerank import HttpReranker
from herald.rag.retrieval import RetrievedChunk


def chunk(text: str, score: float) -> RetrievedChunk:
    return RetrievedChunk(
        text, score, text, f"{text}.md", text, None, {}, id=text, scores={"dense": score}
    )


def server(bodies: list[dict]) -> httpx.MockTransport:
    """A test double of a served cross-encoder: relevance = shared words with the query."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/rerank"
        body = json.loads(request.content)
        bodies.append(body)
        q = set(body["query"].split())
        results = [
            {"index": i, "relevance_score": len(q & set(d.split())) / len(q)}
            for i, d in enumerate(body["documents"])
        ]
        return httpx.Response(200, json={"id": "r", "results": results})

    return httpx.MockTransport(handler)


def test_reranks_by_the_served_scores() -> None:
    bodies: list[dict] = []
    rr = HttpReranker("http://m/v1", "bge-reranker", transport=server(bodies))
    hits = [chunk("laptops and monitors", 0.9), chunk("paid vacation days", 0.5)]
    out = rr("vacation days", hits)
    assert [c.text for c in out] == ["paid vacation days", "laptops and monitors"]
    assert out[0].score == 1.0 and out[0].scores == {"dense": 0.5, "rerank": 1.0}
    assert bodies[0]["model"] == "bge-reranker" and bodies[0]["top_n"] == 2
    assert rr("x", []) == []


def test_rerank_errors_are_clear() -> None:
    bad = httpx.MockTransport(lambda r: httpx.Response(500, text="boom"))
    with pytest.raises(BackendError, match="answered 500: boom"):
        HttpReranker("http://m/v1", "x", transport=bad)("q", [chunk("a", 1.0)])
    odd = httpx.MockTransport(
        lambda r: httpx.Response(200, json={"results": [{"index": 5, "relevance_score": 1}]})
    )
    with pytest.raises(BackendError, match="index 5"):
        HttpReranker("http://m/v1", "x", transport=odd)("q", [chunk("a", 1.0)])
