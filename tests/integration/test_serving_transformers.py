"""The transformers backend on the tiny Llama: dynamic batching, sampling, logprobs, adapters,
chat templates from the model version, and serving registered versions by name."""

from __future__ import annotations

import asyncio
import math
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from herald.api import create_app
from herald.bootstrap import Herald
from herald.models.testing import TINY_CHAT_TEMPLATE, tiny_llama
from herald.serving.backends.base import GenerationRequest, SamplingParams
from herald.serving.backends.transformers import TransformersBackend
from herald.settings import Settings

KEY = "k"
CHAT: list[Any] = [{"role": "user", "content": "What is 2 + 3?"}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
async def backend(tiny: Path) -> AsyncIterator[TransformersBackend]:
    b = TransformersBackend(str(tiny), batch_window_ms=20, max_batch_size=8)
    await b.load()
    yield b
    await b.close()


async def run(b: TransformersBackend, prompt: Any, **params: Any) -> tuple[str, Any]:
    text = ""
    last = None
    async for d in b.generate(GenerationRequest(prompt, SamplingParams(**params))):
        text += d.text
        last = d
    assert last is not None
    return text, last


async def test_batched_greedy_equals_one_by_one(backend: TransformersBackend) -> None:
    prompts = ["The capital of France", "What is 2 + 3? The answer", "Herald", "The quick brown"]
    alone = [await run(backend, p, max_tokens=8, temperature=0.0) for p in prompts]
    backend.batches.clear()
    together = await asyncio.gather(
        *(run(backend, p, max_tokens=8, temperature=0.0) for p in prompts)
    )
    assert backend.batches == [4]  # grouped into one batch
    assert [t for t, _ in together] == [t for t, _ in alone]
    assert all(d.usage.completion_tokens == 8 and d.finish_reason == "length" for _, d in together)


async def test_rows_keep_their_own_limits_seeds_and_stops(backend: TransformersBackend) -> None:
    a, b, c, d = await asyncio.gather(
        run(backend, "Herald", max_tokens=3, temperature=0.0),
        run(backend, "Herald", max_tokens=9, temperature=1.0, seed=7),
        run(backend, "Herald", max_tokens=9, temperature=1.0, seed=7, top_p=0.9),
        run(backend, "Herald", max_tokens=9, temperature=1.0, seed=7),
    )
    assert a[1].usage.completion_tokens == 3
    assert b[0] == d[0]  # same seed, same text, even in one batch
    assert b[1].usage.completion_tokens == 9
    assert c[1].usage.completion_tokens == 9  # top_p row decoded alongside
    greedy, _ = await run(backend, "Herald", max_tokens=9, temperature=0.0)
    stop = greedy[3:5]
    text, last = await run(backend, "Herald", max_tokens=9, temperature=0.0, stop=(stop,))
    assert stop not in text and greedy.startswith(text)
    assert last.finish_reason == "stop"


async def test_generated_logprobs_match_prompt_logprobs(backend: TransformersBackend) -> None:
    prompt = "The capital of France"
    text, _ = await run(backend, prompt, max_tokens=1, temperature=0.0, logprobs=2)
    deltas = [
        d
        async for d in backend.generate(
            GenerationRequest(prompt, SamplingParams(max_tokens=1, temperature=0.0, logprobs=2))
        )
    ]
    generated = next(d for d in deltas if d.logprobs).logprobs[0]
    ids = backend.tokenize(prompt)
    next_id = backend.tokenize(prompt + text)[len(ids) :]
    scored = await backend.prompt_logprobs(ids + next_id[:1], 2)
    assert scored[0].logprob is None
    assert scored[-1].logprob == pytest.approx(generated.logprob, abs=1e-4)
    assert max(generated.top.values()) == pytest.approx(generated.logprob, abs=1e-6)  # greedy
    assert all(x.logprob is not None and x.logprob <= 0 for x in scored[1:])


async def test_cancelled_rows_stop(backend: TransformersBackend) -> None:
    gen = backend.generate(GenerationRequest("Herald", SamplingParams(max_tokens=400)))
    await anext(gen)
    await gen.aclose()
    text, _ = await run(backend, "Herald", max_tokens=2, temperature=0.0)  # still serves
    assert text


def make_lora(base: Path, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, use_safetensors=True)
    with warnings.catch_warnings():  # peft 0.21 probes a property transformers 5 deprecated
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing.*", FutureWarning)
        peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    peft.save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture
async def gateway(tiny: Path, tmp_path: Path) -> AsyncIterator[tuple[Herald, openai.AsyncOpenAI]]:
    other_template = TINY_CHAT_TEMPLATE.replace("<|im_start|>", "<|im_start|> ")
    adapter = make_lora(tiny, tmp_path / "adapter")
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        serving={
            "bundled": False,
            "registry": True,
            "models": {
                "tiny": {"backend": "transformers", "model": str(tiny)},
                "tiny-lora": {
                    "backend": "transformers",
                    "model": str(tiny),
                    "options": {"adapter": str(adapter)},
                    "parent": "tiny",
                },
                "tiny-retemplated": {
                    "backend": "transformers",
                    "model": str(tiny),
                    "options": {"chat_template": other_template},
                },
            },
        },
    )
    h = Herald(settings)
    app = create_app(h, KEY, manage_lifecycle=False)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h")
    yield h, openai.AsyncOpenAI(api_key=KEY, base_url="http://h/v1", http_client=http)
    await http.aclose()
    await h.serving.close()
    h.registry.close()


async def test_gateway_chat_and_lm_eval_style_completions(
    gateway: tuple[Herald, openai.AsyncOpenAI],
) -> None:
    _, c = gateway
    r = await c.chat.completions.with_raw_response.create(
        model="tiny", messages=CHAT, max_tokens=5, temperature=0
    )
    assert r.headers["x-herald-chat-template"] == "tokenizer"
    chat = r.parse()
    assert chat.usage is not None and chat.usage.completion_tokens <= 5
    comp = await c.completions.create(
        model="tiny", prompt="The capital of France", echo=True, max_tokens=0, logprobs=1
    )
    lp = comp.choices[0].logprobs
    assert lp is not None and lp.token_logprobs is not None and lp.tokens is not None
    assert comp.choices[0].text == "The capital of France"
    assert "".join(lp.tokens) == "The capital of France"
    assert lp.token_logprobs[0] is None
    assert sum(x for x in lp.token_logprobs[1:] if x is not None) < 0
    assert all(math.isfinite(x) for x in lp.token_logprobs[1:] if x is not None)


async def test_lora_adapter_is_served_with_parent(
    gateway: tuple[Herald, openai.AsyncOpenAI],
) -> None:
    h, c = gateway
    models = {m.id: m for m in (await c.models.list()).data}
    assert models["tiny-lora"].model_extra is not None
    assert models["tiny-lora"].model_extra["parent"] == "tiny"
    r = await c.chat.completions.create(model="tiny-lora", messages=CHAT, max_tokens=3)
    assert r.choices[0].message.content is not None
    backend = (await h.serving.route("tiny-lora")).backend
    from peft import PeftModel

    assert isinstance(backend.lm, PeftModel)  # type: ignore[attr-defined]


async def test_version_template_mismatch_is_reported(
    gateway: tuple[Herald, openai.AsyncOpenAI], caplog: pytest.LogCaptureFixture
) -> None:
    _, c = gateway
    r = await c.chat.completions.with_raw_response.create(
        model="tiny-retemplated", messages=CHAT, max_tokens=2
    )
    assert r.headers["x-herald-chat-template"] == "mismatch"
    assert any("differs from the tokenizer" in rec.message for rec in caplog.records)


async def test_registered_version_is_served_by_uri(
    gateway: tuple[Herald, openai.AsyncOpenAI], tiny: Path
) -> None:
    h, c = gateway
    mv, _ = h.registry.register_model_version(
        "tiny-reg", artifact_uri=tiny.as_uri(), kind="full", chat_template=TINY_CHAT_TEMPLATE
    )
    h.registry.set_alias("tiny-reg", "champion", mv.version)
    r = await c.chat.completions.with_raw_response.create(
        model="models:/tiny-reg@champion", messages=CHAT, max_tokens=2
    )
    assert r.headers["x-herald-chat-template"] == "version"
    replica = await h.serving.route("models:/tiny-reg@champion")
    assert replica.spec.version == f"models:/tiny-reg/{mv.version}"
    assert replica.spec.source == "registry"
    with pytest.raises(openai.NotFoundError):
        await c.chat.completions.create(model="models:/nothing@champion", messages=CHAT)
