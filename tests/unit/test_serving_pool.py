"""ModelPool: lazy single loads, LRU unloads, admission control, router and hook seams."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from herald.errors import ConfigurationError
from herald.serving import ModelNotFound, ModelPool, ModelSpec, Overloaded, Replica
from herald.serving.backends import backend_class, create_backend, register_backend
from herald.serving.backends.base import StopBuffer
from herald.serving.backends.fake import FakeBackend
from herald.serving.chat.protocol import ChatCompletionRequest
from herald.serving.common import parse_request
from herald.serving.errors import BadParameter
from herald.serving.pool import bundled_specs
from herald.serving.templates import render_chat
from herald.settings import ServingSettings

LOADS: list[str] = []


class CountingBackend(FakeBackend):
    name = "counting"

    async def load(self) -> None:
        LOADS.append(self.model)
        await asyncio.sleep(0.05)  # concurrent first requests arrive while loading
        await super().load()


register_backend("counting", f"{__name__}:CountingBackend")


def spec(name: str, backend: str = "fake", **options: Any) -> ModelSpec:
    return ModelSpec(name, backend, f"{name}-weights", options)


async def test_concurrent_first_requests_load_once() -> None:
    LOADS.clear()
    pool = ModelPool([spec("m", "counting")])
    replicas = await asyncio.gather(*(pool.route("m") for _ in range(8)))
    assert LOADS == ["m-weights"]
    assert len({id(r) for r in replicas}) == 1
    await pool.close()


async def test_lru_unloads_idle_models() -> None:
    pool = ModelPool([spec("a"), spec("b"), spec("c")], max_loaded=2)
    a = await pool.route("a")
    b = await pool.route("b")
    await pool.route("a")  # a is now the most recently used
    a.last_used -= 5  # both idle for a while
    b.last_used -= 10
    await pool.route("c")
    assert [r.spec.name for r in pool.loaded()] == ["a", "c"]
    assert a.backend.loaded  # type: ignore[attr-defined]
    await pool.close()
    assert pool.loaded() == []


async def test_busy_models_are_not_unloaded() -> None:
    pool = ModelPool([spec("a"), spec("b")], max_loaded=1)
    a = await pool.route("a")
    a.admit()
    async with a.slot():
        await pool.route("b")
        assert {r.spec.name for r in pool.loaded()} == {"a", "b"}  # over the limit while busy
    await pool.close()


async def test_admission_bounds_the_queue() -> None:
    backend = create_backend("fake", "x", max_concurrency=1)
    replica = Replica(spec("x"), backend, max_queue=1)
    replica.admit()
    replica.admit()
    with pytest.raises(Overloaded) as err:
        replica.admit()
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "1"
    async with replica.slot():
        assert replica.running == 1 and replica.waiting == 1
    assert replica.outstanding == 1


async def test_unknown_model_lists_served_ones() -> None:
    pool = ModelPool([spec("alpha")])
    with pytest.raises(ModelNotFound) as err:
        await pool.route("beta")
    assert "alpha" in err.value.message and err.value.param == "model"


async def test_routers_are_consulted_first() -> None:
    pool = ModelPool([spec("public"), spec("v2")])
    calls: list[tuple[str, str | None]] = []

    async def canary(model: str, user: str | None) -> Replica | None:
        calls.append((model, user))
        if model == "public" and user == "beta-tester":
            return await pool.replica(pool.specs["v2"])
        return None

    pool.add_router(canary)
    assert (await pool.route("public", user="beta-tester")).spec.name == "v2"
    assert (await pool.route("public", user="someone")).spec.name == "public"
    assert calls == [("public", "beta-tester"), ("public", "someone")]
    await pool.close()


def test_backend_registry_errors() -> None:
    with pytest.raises(ConfigurationError, match="unknown serving backend 'nope'"):
        backend_class("nope")
    assert backend_class("fake") is FakeBackend


def test_settings_and_bundled_defaults() -> None:
    s = ServingSettings(models={"x": {"backend": "fake", "model": "m"}}, threads=2)
    pool = ModelPool.from_settings(s)
    names = {sp.name for sp in pool.listed()}
    assert "x" in names
    assert names - {"x"} == {sp.name for sp in bundled_specs()}
    assert pool.default_options["llamacpp"] == {"threads": 2}
    assert pool.registry is None
    off = ModelPool.from_settings(ServingSettings(bundled=False))
    assert off.listed() == []


@pytest.mark.parametrize(
    ("chunks", "stop", "expected", "hit"),
    [
        (["Hel", "lo wor", "ld"], ["o w"], "Hell", True),
        (["abc", "def"], ["xyz"], "abcdef", False),
        (["a", "b", "STOP", "c"], ["STOP", "b"], "a", True),
        (["x"], [], "x", False),
    ],
)
def test_stop_buffer(chunks: list[str], stop: list[str], expected: str, hit: bool) -> None:
    buf = StopBuffer(stop)
    out = ""
    stopped = False
    for c in chunks:
        text, stopped = buf.feed(c)
        out += text
        if stopped:
            break
    if not stopped:
        out += buf.flush()
    assert (out, stopped) == (expected, hit)


def test_param_names_in_validation_errors() -> None:
    with pytest.raises(BadParameter) as err:
        parse_request(
            ChatCompletionRequest,
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}',
        )
    assert "top_logprobs requires logprobs" in err.value.message
    with pytest.raises(BadParameter) as err:
        parse_request(ChatCompletionRequest, b"[1]")
    assert err.value.code == "invalid_json"


def test_chat_template_sandbox() -> None:
    tpl = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    assert render_chat(tpl, [{"role": "user", "content": "hi"}]) == "<user>hi"
    with pytest.raises(BadParameter, match="refused"):
        render_chat("{{ raise_exception('no system role') }}", [])
    with pytest.raises(BadParameter, match="chat template failed"):
        render_chat("{{ messages.__class__.__mro__[1].__subclasses__() }}", [])


async def test_vllm_backend_imports_lazily_and_explains_itself() -> None:
    import importlib.util

    cls = backend_class("vllm")  # importable without vLLM installed
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: exercised on a GPU machine instead")
    from herald.serving import ModelUnavailable

    with pytest.raises(ModelUnavailable, match=r'pip install "herald\[vllm\]"'):
        await cls("some/model").load()
    pool = ModelPool([spec("gpu-model", "vllm")])
    with pytest.raises(ModelUnavailable, match="failed to load"):
        await pool.route("gpu-model")


async def test_health_of_loaded_replicas() -> None:
    pool = ModelPool([spec("ok"), spec("sick", healthy=False), spec("idle")])
    assert await pool.health() == {}
    await pool.route("ok")
    await pool.route("sick")
    assert await pool.health() == {"ok": True, "sick": False}
    await pool.close()
