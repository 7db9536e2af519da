"""The OpenAI wire format through the official client, in process (fake backend)."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from herald.api import create_app
from herald.bootstrap import Herald
from herald.serving.backends import register_backend
from herald.serving.backends.fake import FakeBackend
from herald.settings import Settings

KEY = "test-key"
MODELS = {
    "fake": {"backend": "fake", "model": "fake-1", "options": {"context_length": 64}},
    "fixed": {"backend": "fake", "model": "fake-2", "options": {"reply": "Hello there friend"}},
    "adapter": {"backend": "fake", "model": "fake-3", "parent": "fake"},
    "chat-only": {"backend": "chat-only", "model": "c"},
}


@pytest.fixture
async def herald(tmp_path: Path) -> AsyncIterator[Herald]:
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        serving={"models": MODELS, "bundled": False, "registry": False},
    )
    h = Herald(settings)
    yield h
    await h.serving.close()
    h.registry.close()


@pytest.fixture
async def http(herald: Herald) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(herald, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://herald",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield c


@pytest.fixture
def client(http: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY, base_url="http://herald/v1", http_client=http)


CHAT: list[Any] = [{"role": "user", "content": "Say hi"}]


async def test_models_list_shows_parent_of_adapters(client: openai.AsyncOpenAI) -> None:
    page = await client.models.list()
    ids = {m.id: m for m in page.data}
    assert set(ids) == {"fake", "fixed", "adapter", "chat-only"}
    assert all(m.object == "model" and m.owned_by == "herald" and m.created for m in page.data)
    assert ids["adapter"].model_extra is not None and ids["adapter"].model_extra["parent"] == "fake"
    one = await client.models.retrieve("fixed")
    assert one.id == "fixed"


async def test_chat_completion(client: openai.AsyncOpenAI) -> None:
    r = await client.chat.completions.create(model="fixed", messages=CHAT)
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "Hello there friend"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.completion_tokens == 3
    assert r.usage.total_tokens == r.usage.prompt_tokens + 3


async def test_chat_sampling_params_max_tokens_stop_n_seed(client: openai.AsyncOpenAI) -> None:
    r = await client.chat.completions.create(model="fake", messages=CHAT, max_tokens=4, n=2)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].message.content == " the quick brown fox"
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 8
    r = await client.chat.completions.create(
        model="fake", messages=CHAT, max_completion_tokens=6, stop=[" fox"]
    )
    assert r.choices[0].message.content == " the quick brown"
    assert r.choices[0].finish_reason == "stop"
    r = await client.chat.completions.create(model="fake", messages=CHAT, max_tokens=2, seed=3)
    assert r.choices[0].message.content == " fox jumps"


async def test_chat_logprobs(client: openai.AsyncOpenAI) -> None:
    r = await client.chat.completions.create(
        model="fake", messages=CHAT, max_tokens=2, logprobs=True, top_logprobs=3
    )
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content is not None
    assert [t.token for t in lp.content] == [" the", " quick"]
    assert len(lp.content[0].top_logprobs) == 3
    assert lp.content[0].bytes == list(b" the")


async def test_chat_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="fake",
        messages=CHAT,
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " the quick brown"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["length"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_raw_sse_ends_with_done(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/v1/chat/completions",
        json={"model": "fake", "messages": CHAT, "max_tokens": 2, "stream": True},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [e for e in r.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert '"usage"' not in r.text  # only with stream_options.include_usage


async def test_completions_echo_logprobs_for_lm_eval(client: openai.AsyncOpenAI) -> None:
    r = await client.completions.create(
        model="fake", prompt="The cat sat", echo=True, max_tokens=0, logprobs=1, temperature=0
    )
    c = r.choices[0]
    assert r.object == "text_completion"
    assert c.text == "The cat sat"
    assert c.logprobs is not None
    assert c.logprobs.tokens == ["The", " cat", " sat"]
    assert c.logprobs.token_logprobs is not None and c.logprobs.token_logprobs[0] is None
    assert all(isinstance(x, float) for x in c.logprobs.token_logprobs[1:])
    assert c.logprobs.text_offset == [0, 3, 7]
    assert c.logprobs.top_logprobs is not None and c.logprobs.top_logprobs[0] is None
    assert r.usage is not None and r.usage.prompt_tokens == 3


async def test_completions_token_prompts_batch_and_echo_generation(
    client: openai.AsyncOpenAI,
) -> None:
    r = await client.completions.create(model="fake", prompt=[[5, 6], [7]], max_tokens=1, echo=True)
    assert [c.text for c in r.choices] == [" t5 t6 the", " t7 the"]
    r = await client.completions.create(model="fake", prompt="x", max_tokens=2, logprobs=2)
    assert r.choices[0].text == " the quick"
    assert r.choices[0].logprobs is not None
    assert r.choices[0].logprobs.text_offset == [0, 4]


async def test_completions_stream(client: openai.AsyncOpenAI) -> None:
    stream = await client.completions.create(model="fake", prompt="x", max_tokens=2, stream=True)
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].text for c in chunks) == " the quick"
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_embeddings_float_and_base64(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    r = await client.embeddings.create(model="fake", input=["a b", "c"], encoding_format="float")
    assert [d.index for d in r.data] == [0, 1]
    vec = r.data[0].embedding
    assert len(vec) == 8
    assert abs(sum(x * x for x in vec) - 1.0) < 1e-6
    assert r.usage.prompt_tokens == 3
    # the client asks for base64 by default and decodes it
    r2 = await client.embeddings.create(model="fake", input=["a b", "c"])
    assert r2.data[0].embedding == pytest.approx(vec, abs=1e-6)
    raw = await http.post(
        "/v1/embeddings", json={"model": "fake", "input": "a b", "encoding_format": "base64"}
    )
    b64 = raw.json()["data"][0]["embedding"]
    assert isinstance(b64, str)
    assert list(struct.unpack("<8f", base64.b64decode(b64))) == pytest.approx(vec, abs=1e-6)
    r3 = await client.embeddings.create(model="fake", input=[[1, 2, 3]], dimensions=4)
    assert len(r3.data[0].embedding) == 4


async def test_unknown_model_is_404_model_not_found(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        await client.chat.completions.create(model="nope", messages=CHAT)
    body: Any = err.value.body
    assert body["code"] == "model_not_found"
    assert body["param"] == "model"
    assert body["type"] == "invalid_request_error"
    assert "fake" in body["message"]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ],
)
async def test_bad_parameters_are_400_naming_the_param(
    http: httpx.AsyncClient, payload: dict[str, Any], param: str
) -> None:
    body = {"model": "fake", "messages": CHAT, **payload}
    r = await http.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param
    assert err["type"] == "invalid_request_error"
    assert param.split(".")[0].split("[")[0] in err["message"]


async def test_missing_and_malformed(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/chat/completions", json={"messages": CHAT})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "model"
    assert "Missing required parameter" in r.json()["error"]["message"]
    r = await http.post("/v1/completions", content=b"{not json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"


async def test_context_overflow_is_400_with_limits(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(model="fake", messages=CHAT, max_tokens=100)
    body: Any = err.value.body
    assert body["code"] == "context_length_exceeded"
    assert "maximum context length is 64 tokens" in body["message"]
    long_prompt = "word " * 100
    with pytest.raises(openai.BadRequestError) as err:
        await client.completions.create(model="fake", prompt=long_prompt, max_tokens=1)
    assert "100 in the prompt" in str(err.value)


class ChatOnly(FakeBackend):
    name = "chat-only"
    capabilities = frozenset({"chat"})


register_backend("chat-only", f"{__name__}:ChatOnly")


async def test_embeddings_on_chat_only_model_and_empty_input(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/embeddings", json={"model": "fake", "input": []})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "input"
    for path, body in (
        ("/v1/embeddings", {"model": "chat-only", "input": "x"}),
        ("/v1/completions", {"model": "chat-only", "prompt": "x"}),
    ):
        r = await http.post(path, json=body)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "unsupported_for_model"
        assert r.json()["error"]["param"] == "model"


async def test_auth_is_required(herald: Herald) -> None:
    app = create_app(herald, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as c:
        r = await c.get("/v1/models")
    assert r.status_code == 401


async def test_metrics_exposed(client: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
    await client.chat.completions.create(model="fixed", messages=CHAT)
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="nope", messages=CHAT)
    text = (await http.get("/metrics")).text
    for name in (
        "herald:time_to_first_token_seconds_bucket",
        "herald:e2e_request_latency_seconds_count",
        "herald:inter_token_latency_seconds_count",
        'herald:request_success_total{finished_reason="stop",model_name="fixed",version=""} 1.0',
        'herald:generation_tokens_total{model_name="fixed",version=""} 3.0',
        'herald:request_errors_total{model_name="nope",status="404",version=""} 1.0',
    ):
        assert name in text, name


@pytest.mark.parametrize("include_usage", [False, True])
async def test_fast_stream_chunks_equal_the_wire_models(
    http: httpx.AsyncClient, include_usage: bool
) -> None:
    import json

    from herald.serving.chat.protocol import ChatCompletionChunk

    body: dict[str, Any] = {"model": "fake", "messages": CHAT, "max_tokens": 3, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    r = await http.post("/v1/chat/completions", json=body)
    events = [json.loads(e[6:]) for e in r.text.split("\n\n") if e and e != "data: [DONE]"]
    assert len(events) >= 4
    for e in events:
        model = ChatCompletionChunk.model_validate(e)
        expected = model.model_dump(mode="json", exclude=None if include_usage else {"usage"})
        assert e == expected


async def test_fast_completion_chunks_equal_the_wire_models(http: httpx.AsyncClient) -> None:
    import json

    from herald.serving.completions.protocol import CompletionResponse

    body = {"model": "fake", "prompt": "x", "max_tokens": 3, "stream": True}
    r = await http.post("/v1/completions", json=body)
    events = [json.loads(e[6:]) for e in r.text.split("\n\n") if e and e != "data: [DONE]"]
    assert len(events) >= 3
    for e in events:
        expected = CompletionResponse.model_validate(e).model_dump(mode="json", exclude={"usage"})
        assert e == expected
