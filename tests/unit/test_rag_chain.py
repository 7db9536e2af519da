"""RAG chains as OpenAI models, on the fake backend and a hashing embedder (fast, no model)."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from herald.rag.chain_backend import (
    CITATIONS_HEADER,
    ChainCollectionNotFound,
    RagChains,
    RagChatCompletionResponse,
    parse_model,
)
from herald.rag.chains import (
    ChainError,
    ChainTemplate,
    load_template,
    pack,
    rewrite_query,
)
from herald.rag.retrieval import RetrievedChunk
from herald.rag.service import RagService
from herald.serving.chat.protocol import ChatCompletionRequest
from herald.serving.chat.service import ChatService
from herald.serving.errors import BadParameter, ModelNotFound
from herald.serving.pool import ModelPool, ModelSpec
from herald.settings import RagSettings

ROOT = Path(__file__).resolve().parents[2]
HANDBOOK = ROOT / "examples" / "rag" / "handbook"
TEMPLATES = ROOT / "examples" / "rag" / "templates"


def chunk(i: int, words: int = 10) -> RetrievedChunk:
    return RetrievedChunk(
        text=" ".join(["word"] * words),
        score=1.0 / i,
        ref_doc_id=f"doc{i}",
        source=f"file:///docs/doc{i}.md",
        title=f"Doc {i}",
        page=None,
        metadata={"section": f"S{i}"},
    )


def words(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m["content"]).split()) + 1 for m in messages)


# pure pieces ------------------------------------------------------------------------------------
def test_rewrite_query_uses_history_for_follow_ups() -> None:
    chat = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "How many vacation days do full-time employees get?"},
        {"role": "assistant", "content": "25 days [1]."},
        {"role": "user", "content": "And part-timers?"},
    ]
    q = rewrite_query(chat)
    assert q.startswith("How many vacation days") and q.endswith("And part-timers?")
    standalone = "Which laptop models can engineers order from the IT catalogue today?"
    assert rewrite_query([*chat, {"role": "user", "content": standalone}]) == standalone
    with pytest.raises(ChainError, match="user message"):
        rewrite_query([{"role": "system", "content": "x"}])


def test_pack_drops_lowest_ranked_passages_that_do_not_fit() -> None:
    t = ChainTemplate()
    chat = [{"role": "user", "content": "what is the policy?"}]
    chunks = [chunk(i, 40) for i in range(1, 6)]
    full = pack(t, chat, chunks, words, 10_000, collection="kb")
    assert [c.index for c in full.citations] == [1, 2, 3, 4, 5] and full.dropped == 0
    budget = full.prompt_tokens - 60  # room for about three passages fewer... measured below
    packed = pack(t, chat, chunks, words, budget, collection="kb")
    assert 0 < len(packed.citations) < 5 and packed.prompt_tokens <= budget
    assert [c.ref_doc_id for c in packed.citations] == [
        f"doc{i}" for i in range(1, len(packed.citations) + 1)
    ]  # the best ones stay, numbered from 1
    assert packed.dropped == 5 - len(packed.citations)
    user = packed.messages[-1]["content"]
    assert "[1] Doc 1" in user and "Question: what is the policy?" in user
    assert "[5]" not in user
    with pytest.raises(ChainError, match="context window"):
        pack(t, chat, chunks, words, 5, collection="kb")


def test_templates_load_and_validate(tmp_path: Path) -> None:
    shipped = load_template("default", [TEMPLATES])
    assert shipped == ChainTemplate()  # the YAML documents the built-in defaults
    hr = load_template("hr-policy", [TEMPLATES])
    assert hr.k == 3 and "Employee question" in hr.user
    (tmp_path / "bad.yaml").write_text("k: 3\nbogus: 1\n")
    with pytest.raises(ChainError, match="unknown template field"):
        load_template("bad", [tmp_path])
    (tmp_path / "noq.yaml").write_text("user: '{context}'\n")
    with pytest.raises(ChainError, match="question"):
        load_template("noq", [tmp_path])
    with pytest.raises(ChainError, match="not found"):
        load_template("missing", [tmp_path])
    with pytest.raises(ChainError, match="invalid"):
        load_template("../etc/passwd", [tmp_path])
    with pytest.raises(ChainError, match="k must"):
        ChainTemplate().with_overrides(k=0)


def test_parse_model() -> None:
    assert parse_model("rag/handbook@smollm2-135m-instruct") == (
        "handbook",
        "smollm2-135m-instruct",
    )
    assert parse_model("smollm2") is None
    with pytest.raises(ModelNotFound, match="rag/<collection>@<model>"):
        parse_model("rag/handbook")


# served through the chat endpoint's service ----------------------------------------------------
@pytest.fixture
def rag(tmp_path: Path) -> Iterator[RagService]:
    svc = RagService(
        RagSettings(
            store_url=f"local://{tmp_path / 'vs'}",
            catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
            embedding_model="hash:256",
        ),
        home=tmp_path,
    )
    docs = tmp_path / "docs"
    shutil.copytree(HANDBOOK, docs)
    svc.create_collection("handbook")
    svc.ingest("handbook", str(docs))
    yield svc
    svc.close()
    RagService.reset()


@pytest.fixture
def pool(rag: RagService) -> ModelPool:
    p = ModelPool(
        [
            ModelSpec(
                "fake", "fake", "x", {"reply": "You get 25 days [1].", "context_length": 600}
            ),
            ModelSpec("tiny", "fake", "x", {"context_length": 150}),
            ModelSpec("emb", "embeddings-missing", "x"),
        ]
    )
    RagChains.install(p, lambda: rag, template_dirs=[TEMPLATES])
    return p


def request(model: str = "rag/handbook@fake", **kw: Any) -> ChatCompletionRequest:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "How many vacation days do I get?"}],
        **kw,
    }
    return ChatCompletionRequest.model_validate(body)


async def test_chat_answers_with_citations(pool: ModelPool) -> None:
    resp, headers = await ChatService(pool).create(request())
    assert isinstance(resp, RagChatCompletionResponse)
    text = resp.choices[0].message.content or ""
    assert text.startswith("You get 25 days [1].") and "\n\nSources:\n[1] " in text
    assert resp.citations and resp.citations[0]["index"] == 1
    assert resp.citations[0]["cited"] is True
    assert all(not c["cited"] for c in resp.citations[1:])
    assert any("vacation-policy.md" in c["source"] for c in resp.citations)
    assert {"source", "title", "page", "ref_doc_id", "score"} <= set(resp.citations[0])
    assert json.loads(headers[CITATIONS_HEADER]) == [{**c, "cited": False} for c in resp.citations]
    dumped = resp.model_dump(mode="json")
    assert dumped["object"] == "chat.completion" and dumped["citations"]
    assert resp.usage.prompt_tokens > 50  # the passages went to the model


async def test_streaming_puts_sources_in_the_final_chunk(pool: ModelPool) -> None:
    stream, headers = await ChatService(pool).create(request(stream=True))
    assert isinstance(stream, AsyncIterator)
    events = [e async for e in stream]
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "stop" and "Sources:" in last["delta"]["content"]
    assert json.loads(headers[CITATIONS_HEADER])[0]["index"] == 1
    # structured citations ride on the finishing chunk, as on a non-streamed response
    assert [c["index"] for c in chunks[-1]["citations"]] == list(
        range(1, len(chunks[-1]["citations"]) + 1)
    )
    assert chunks[-1]["citations"][0]["source"]
    assert all("citations" not in c for c in chunks[:-1])


async def test_request_options_pick_template_and_k(pool: ModelPool) -> None:
    resp, _ = await ChatService(pool).create(
        request(rag={"template": "hr-policy", "k": 2, "sources_footer": False})
    )
    assert isinstance(resp, RagChatCompletionResponse)
    assert len(resp.citations) == 2
    assert resp.choices[0].message.content == "You get 25 days [1]."
    with pytest.raises(BadParameter, match="unknown rag option"):
        await ChatService(pool).create(request(rag={"kk": 1}))
    with pytest.raises(BadParameter, match="not found"):
        await ChatService(pool).create(request(rag={"template": "nope"}))


async def test_small_context_keeps_fewer_passages(pool: ModelPool) -> None:
    resp, _ = await ChatService(pool).create(request("rag/handbook@tiny", max_tokens=1))
    assert isinstance(resp, RagChatCompletionResponse)
    assert len(resp.citations) < 5
    assert resp.usage.prompt_tokens <= 149


async def test_missing_collection_and_model_are_404(pool: ModelPool) -> None:
    with pytest.raises(ChainCollectionNotFound) as err:
        await ChatService(pool).create(request("rag/nope@fake"))
    assert err.value.status == 404 and err.value.code == "collection_not_found"
    with pytest.raises(ModelNotFound) as err2:
        await ChatService(pool).create(request("rag/handbook@nope"))
    assert err2.value.code == "model_not_found"


async def test_deleted_document_leaves_the_citations(pool: ModelPool, rag: RagService) -> None:
    resp, _ = await ChatService(pool).create(request())
    assert isinstance(resp, RagChatCompletionResponse)
    gone = next(c["ref_doc_id"] for c in resp.citations if "vacation" in c["source"])
    rag.delete_documents("handbook", [gone])
    resp2, _ = await ChatService(pool).create(request())
    assert isinstance(resp2, RagChatCompletionResponse)
    assert gone not in {c["ref_doc_id"] for c in resp2.citations}


def test_models_are_listed(pool: ModelPool) -> None:
    names = {s.name for s in pool.listed()}
    assert {"rag/handbook@fake", "rag/handbook@tiny"} <= names


async def test_a_registered_prompt_is_the_system_prompt(
    pool: ModelPool, rag: RagService, tmp_path: Path
) -> None:
    from herald.prompts import open_prompt_store

    store = open_prompt_store(tmp_path)
    store.register("hr", "HR bot for {{ collection }}. {{ citation_instructions }}")
    store.register("bad", "Hello {{ customer }}")
    store.promote("hr", "production", 1)
    store.close()
    seen: list[list[dict[str, Any]]] = []
    replica = await pool.route("fake")
    original = replica.backend.chat_prompt

    def spy(messages: list[dict[str, Any]]) -> Any:
        seen.append(messages)
        return original(messages)

    replica.backend.chat_prompt = spy  # type: ignore[method-assign]
    resp, _ = await ChatService(pool).create(request(rag={"template": "prompts:/hr@production"}))
    assert isinstance(resp, RagChatCompletionResponse) and resp.citations
    assert seen[-1][0]["content"].startswith("HR bot for handbook. After each statement")
    with pytest.raises(BadParameter, match="customer"):
        await ChatService(pool).create(request(rag={"template": "prompts:/bad/1"}))
    with pytest.raises(BadParameter, match="does not exist"):
        await ChatService(pool).create(request(rag={"template": "prompts:/nope"}))
