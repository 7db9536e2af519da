"""Rerankers: reorder retrieved chunks with a served cross-encoder.

``HttpReranker`` speaks the ``/v1/rerank`` wire format shared by vLLM, Hugging Face TEI, Jina and
Cohere (request ``{"model", "query", "documents", "top_n"}``, response ``{"results": [{"index",
"relevance_score"}]}``). Any callable ``(query, chunks) -> chunks`` works as the ``rerank=``
hook of :func:`herald.rag.retrieval.retrieve`; this is the one Herald ships.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from herald.errors import BackendError, ConfigurationError
from herald.rag.retrieval import RetrievedChunk


class HttpReranker:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"rerank endpoint {base_url!r} must be an http(s) URL")
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=timeout_s,
            transport=transport,
        )

    def __call__(self, query: str, chunks: list[RetrievedChunk]) -> list[RetrievedChunk]:
        """Chunks ordered by the model's relevance score (``scores["rerank"]`` keeps it)."""
        if not chunks:
            return []
        body: dict[str, Any] = {
            "model": self.model,
            "query": query,
            "documents": [c.text for c in chunks],
            "top_n": len(chunks),
        }
        try:
            r = self._http.post("rerank", json=body)
        except httpx.HTTPError as exc:
            raise BackendError(f"rerank endpoint {self._http.base_url}: {exc}") from exc
        if r.status_code != 200:
            raise BackendError(
                f"rerank endpoint {self._http.base_url} answered {r.status_code}: {r.text[:300]}"
            )
        try:
            results = [(int(x["index"]), float(x["relevance_score"])) for x in r.json()["results"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"rerank endpoint returned an unexpected body: {exc}") from exc
        out = []
        for index, score in sorted(results, key=lambda t: -t[1]):
            if not 0 <= index < len(chunks):
                raise BackendError(f"rerank endpoint returned index {index} of {len(chunks)}")
            c = chunks[index]
            out.append(dataclasses.replace(c, score=score, scores={**c.scores, "rerank": score}))
        return out

    def close(self) -> None:
        self._http.close()
