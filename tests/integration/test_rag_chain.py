"""``rag/handbook@smollm2-135m-instruct`` end to end through the official OpenAI client: the
sample handbook ingested with the bundled MiniLM, answers by the bundled SmolLM2 (llama.cpp).
A 135M model's wording is weak, so the assertions are on the citations."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from herald.api import create_app
from herald.bootstrap import Herald
from herald.rag.service import RagService
from herald.serving.pool import BUNDLED_LLM
from herald.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KEY = "k"
MODEL = f"rag/handbook@{BUNDLED_LLM}"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.llamacpp,
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[openai.AsyncOpenAI, RagService]]:
    home = tmp_path_factory.mktemp("ragchain")
    RagService.reset()
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'h.db'}",
        serving={"bundled": True, "registry": False, "threads": 2},
        rag={
            "store_url": f"local://{home / 'vs'}",
            "catalog_url": f"sqlite:///{home / 'catalog.db'}",
        },
    )
    h = Herald(settings)
    app = create_app(h, KEY, manage_lifecycle=False)
    docs = home / "handbook"
    shutil.copytree(ROOT / "examples" / "rag" / "handbook", docs)
    svc = h.services.rag  # the service the chains and the REST routes use
    svc.create_collection("handbook")
    svc.ingest("handbook", str(docs))
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://h",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    yield openai.AsyncOpenAI(api_key=KEY, base_url="http://h/v1", http_client=http), svc
    await http.aclose()
    await h.serving.close()
    h.registry.close()
    h.services.close()
    RagService.reset()


def qa(source: str) -> str:
    for line in (ROOT / "examples" / "rag" / "handbook-qa.jsonl").read_text().splitlines():
        item = json.loads(line)
        if item["source"] == source:
            return str(item["question"])
    raise AssertionError(source)


async def test_answers_cite_the_right_file_and_forget_deleted_ones(
    client: tuple[openai.AsyncOpenAI, RagService],
) -> None:
    oai, svc = client
    question = qa("vacation-policy.md")
    chat: list[Any] = [{"role": "user", "content": question}]
    r = await oai.chat.completions.create(model=MODEL, messages=chat, max_tokens=48, temperature=0)
    citations = (r.model_extra or {})["citations"]
    print(f"\n{question}\n→ {r.choices[0].message.content}\n", [c["source"] for c in citations])
    assert any(c["source"].endswith("/vacation-policy.md") for c in citations)
    assert "Sources:" in (r.choices[0].message.content or "")
    assert r.usage is not None and r.usage.prompt_tokens > 200  # passages were packed

    stream = await oai.chat.completions.create(
        model=MODEL, messages=chat, max_tokens=16, temperature=0, stream=True
    )
    pieces = [c async for c in stream]
    assert pieces[-1].choices[0].finish_reason in ("stop", "length")
    assert "vacation-policy.md" in (pieces[-1].choices[0].delta.content or "")

    models = {m.id async for m in oai.models.list()}
    assert MODEL in models

    gone = {c["ref_doc_id"] for c in citations if c["source"].endswith("/vacation-policy.md")}
    svc.delete_documents("handbook", sorted(gone))  # what REST delete does
    r2 = await oai.chat.completions.create(model=MODEL, messages=chat, max_tokens=8, temperature=0)
    after = (r2.model_extra or {})["citations"]
    assert after and not any(c["ref_doc_id"] in gone for c in after)


async def test_missing_collection_is_an_openai_404(
    client: tuple[openai.AsyncOpenAI, RagService],
) -> None:
    oai, _ = client
    with pytest.raises(openai.NotFoundError) as err:
        await oai.chat.completions.create(
            model=f"rag/nope@{BUNDLED_LLM}", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.code == "collection_not_found"
    with pytest.raises(openai.NotFoundError) as err2:
        await oai.chat.completions.create(
            model="rag/handbook@no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert err2.value.code == "model_not_found"
