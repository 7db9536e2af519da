"""Embedders: the bundled MiniLM, the OpenAI-compatible HTTP adapter, feature hashing."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from herald.errors import BackendError, ConfigurationError
from herald.rag.embeddings import open_embedder
from herald.rag.embeddings.hashing import HashingEmbedder
from herald.rag.embeddings.openai import OpenAIEmbedder


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


@pytest.mark.slow
def test_bundled_minilm_is_offline_batched_and_semantic() -> None:
    e = open_embedder("all-minilm-l6-v2")
    assert e is open_embedder("ALL-MiniLM-L6-v2")  # cached per process
    assert (e.dimension, e.max_tokens) == (384, 254)
    texts = [f"sentence number {i} about vacation days" for i in range(40)]
    batched = e.embed(texts)
    single = [e.embed([t])[0] for t in texts[:3]]
    assert all(cos(a, b) > 0.9999 for a, b in zip(batched, single, strict=False))
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4 for v in batched)
    q = e.embed_query("How many days of holiday do I get?")
    near, far = e.embed(["Employees get 27 vacation days a year.", "Laptops have 32 GB RAM."])
    assert cos(q, near) > cos(q, far) + 0.2
    assert e.count_tokens("hello world") == 2


def openai_server(calls: list[dict]) -> httpx.MockTransport:
    """A test double of an OpenAI-compatible /v1/embeddings endpoint (wire format only)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != "Bearer sk-test":
            return httpx.Response(401, json={"error": {"message": "bad key"}})
        body = json.loads(request.content)
        calls.append(body)
        if body["model"] != "emb":
            return httpx.Response(404, json={"error": {"message": "model 'x' not found"}})
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0]}
            for i, t in enumerate(body["input"])
        ]
        return httpx.Response(200, json={"object": "list", "data": data[::-1], "model": "emb"})

    return httpx.MockTransport(handler)


def test_openai_embedder_batches_orders_and_normalises() -> None:
    calls: list[dict] = []
    e = OpenAIEmbedder(
        "emb", "http://up/v1", api_key="sk-test", batch_size=2, transport=openai_server(calls)
    )
    assert e.dimension == 3 and e.ref == "openai:emb@http://up/v1"
    vecs = e.embed(["a", "bbb", "cc"])
    assert [len(c["input"]) for c in calls] == [1, 2, 1]  # probe, then batches of 2
    assert vecs[1] == pytest.approx([3 / math.sqrt(10), 1 / math.sqrt(10), 0.0])
    assert vecs[0] == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(2), 0.0])


def test_openai_embedder_errors_are_clear() -> None:
    with pytest.raises(BackendError, match="answered 401: bad key"):
        OpenAIEmbedder("emb", "http://up/v1", api_key="nope", transport=openai_server([]))
    with pytest.raises(BackendError, match="not found"):
        OpenAIEmbedder("x", "http://up/v1", api_key="sk-test", transport=openai_server([]))
    with pytest.raises(ConfigurationError, match="http"):
        OpenAIEmbedder("emb", "ftp://up")
    with pytest.raises(ConfigurationError, match="openai:<model>@<base url>"):
        open_embedder("openai:just-a-model")


def test_hashing_embedder_and_unknown_references() -> None:
    e = open_embedder("hash:32")
    assert isinstance(e, HashingEmbedder) and e.dimension == 32
    a, b, c = e.embed(["paid vacation days", "vacation days paid", "laptop memory"])
    assert a == e.embed(["paid vacation days"])[0]
    assert cos(a, b) > cos(a, c)
    with pytest.raises(ConfigurationError, match="unknown embedding model"):
        open_embedder("word2vec")
    with pytest.raises(ConfigurationError):
        open_embedder("hash:lots")
