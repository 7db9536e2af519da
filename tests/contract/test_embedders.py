"""The embedder kit (herald.testing.EmbedderContract) over every built-in embedder: feature
hashing, the bundled all-MiniLM-L6-v2 (sentence-transformers) and the OpenAI-compatible HTTP
adapter (against an in-process double of the /v1/embeddings wire format)."""

from __future__ import annotations

import json

import httpx
import pytest

from herald.rag.embeddings.base import Embedder
from herald.rag.embeddings.hashing import HashingEmbedder
from herald.rag.embeddings.openai import OpenAIEmbedder
from herald.testing import EmbedderContract


class TestHashingEmbedder(EmbedderContract):
    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls) -> Embedder:
        return HashingEmbedder(64)


@pytest.mark.slow
class TestBundledMiniLM(EmbedderContract):
    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls) -> Embedder:
        from herald.rag.embeddings import open_embedder

        return open_embedder("all-minilm-l6-v2")


def openai_wire(requests: list[dict]) -> httpx.MockTransport:
    """/v1/embeddings as an OpenAI-compatible server answers it: vectors (here from feature
    hashing, not unit length) out of order with their ``index``."""
    inner = HashingEmbedder(48)

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        requests.append(body)
        vectors = inner.embed(body["input"])
        data = [
            {"object": "embedding", "index": i, "embedding": [3.0 * x for x in v]}
            for i, v in enumerate(vectors)
        ]
        return httpx.Response(200, json={"object": "list", "data": data[::-1], "model": "emb"})

    return httpx.MockTransport(handler)


class TestOpenAIEmbedder(EmbedderContract):
    @pytest.fixture(scope="class")
    @classmethod
    def requests(cls) -> list[dict]:
        return []

    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls, requests: list[dict]) -> Embedder:
        return OpenAIEmbedder(
            "emb", "http://embeddings.test/v1", batch_size=8, transport=openai_wire(requests)
        )

    def test_large_inputs_go_out_in_batches(self, embedder: Embedder, requests: list[dict]) -> None:
        requests.clear()
        embedder.embed([f"text {i}" for i in range(20)])
        assert [len(r["input"]) for r in requests] == [8, 8, 4]
