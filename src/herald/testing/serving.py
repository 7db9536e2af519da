"""The serving-backend contract kit: what every :class:`~herald.serving.backends.base.Backend`
does for the OpenAI gateway.

Subclass :class:`ServingBackendContract` and provide a **class-scoped** ``make_backend`` fixture:
a callable returning a new, not yet loaded backend on the smallest model you have. The kit
loads it once per class on an event loop of its own (no pytest-asyncio needed), runs every
check with a few tokens each, and closes it::

    class TestMyBackend(ServingBackendContract):
        @pytest.fixture(scope="class")
        @classmethod
        def make_backend(cls, tmp_path_factory):
            model = build_tiny_model(tmp_path_factory.mktemp("m"))
            return lambda: MyBackend(str(model), context_length=256)

The checks: a loaded backend is healthy and describes itself; a stream ends with exactly one
final :class:`~herald.serving.backends.base.Delta` carrying ``finish_reason`` and
:class:`~herald.serving.backends.base.Usage` (``length`` means ``max_tokens`` were generated);
greedy decoding is deterministic, also under concurrent calls ("methods are safe to call
concurrently"); stop strings end the text before the stop string; a prompt plus ``max_tokens``
beyond the context is a :class:`~herald.serving.errors.BadParameter`; closing a stream early
leaves the backend usable; token-id prompts are counted exactly; logprobs are log-probabilities;
``chat_prompt`` works when ``chat`` is declared; a capability the backend does not declare
raises :class:`~herald.serving.errors.CapabilityNotSupported`, and a declared ``embeddings``
capability returns one vector per input.

``prompt`` (class attribute) is the completion prompt the checks use; pick words the model's
tokenizer knows.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from herald.serving.backends.base import (
    Backend,
    ChatPrompt,
    Delta,
    GenerationRequest,
    Prompt,
    SamplingParams,
)
from herald.serving.errors import BadParameter, CapabilityNotSupported
from herald.testing._support import rename

__all__ = ["BackendFactory", "ServingBackendContract", "generate"]

BackendFactory = Callable[[], Backend]


@dataclass
class Served:
    """A loaded backend and the event loop it lives on (one per test class)."""

    backend: Backend
    loop: asyncio.AbstractEventLoop


async def generate(backend: Backend, prompt: Prompt, **params: Any) -> tuple[str, list[Delta]]:
    """The whole text of one generation and every delta of its stream."""
    deltas = [
        d async for d in backend.generate(GenerationRequest(prompt, SamplingParams(**params)))
    ]
    return "".join(d.text for d in deltas), deltas


Body = Callable[[Any, Backend], Awaitable[None]]


def _check(body: Body) -> Callable[[Any, Served], None]:
    def test(self: ServingBackendContract, served: Served) -> None:
        served.loop.run_until_complete(body(self, served.backend))

    rename(test, body)
    return test


class ServingBackendContract:
    """The observable contract of a serving backend (see the module doc)."""

    prompt: ClassVar[str] = "The capital of France is"
    #: tokens generated per call; small, so real models stay fast
    max_tokens: ClassVar[int] = 6

    @pytest.fixture(scope="class")
    @classmethod
    def served(cls, make_backend: BackendFactory) -> Iterator[Served]:
        loop = asyncio.new_event_loop()
        backend = make_backend()
        loop.run_until_complete(backend.load())
        try:
            yield Served(backend, loop)
        finally:
            loop.run_until_complete(backend.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _greedy(self, backend: Backend, prompt: Prompt | None = None) -> str:
        text, _ = await generate(
            backend,
            self.prompt if prompt is None else prompt,
            max_tokens=self.max_tokens,
            temperature=0.0,
        )
        return text

    @_check
    async def test_loaded_backend_is_healthy_and_describes_itself(self, backend: Backend) -> None:
        assert await backend.health() is True
        facts = backend.describe()
        assert facts["backend"] == backend.name
        assert backend.context_length > 0 and backend.max_concurrency >= 1
        assert backend.capabilities <= {"chat", "completions", "embeddings"}

    @_check
    async def test_stream_ends_with_one_final_delta_with_usage(self, backend: Backend) -> None:
        if "completions" not in backend.capabilities:
            return await self._generation_is_refused(backend)
        _, deltas = await generate(backend, self.prompt, max_tokens=self.max_tokens, temperature=0)
        *body, last = deltas
        assert all(d.finish_reason is None and d.usage is None for d in body)
        assert last.finish_reason in ("stop", "length") and last.usage is not None
        assert last.usage.prompt_tokens > 0
        assert 0 <= last.usage.completion_tokens <= self.max_tokens
        if last.finish_reason == "length":
            assert last.usage.completion_tokens == self.max_tokens
        assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
        return None

    async def _generation_is_refused(self, backend: Backend) -> None:
        with pytest.raises(CapabilityNotSupported):
            await generate(backend, self.prompt, max_tokens=1)

    @_check
    async def test_greedy_decoding_is_deterministic(self, backend: Backend) -> None:
        if "completions" not in backend.capabilities:
            return await self._generation_is_refused(backend)
        first = await self._greedy(backend)
        assert first == await self._greedy(backend)
        return None

    @_check
    async def test_concurrent_calls_give_the_sequential_results(self, backend: Backend) -> None:
        if "completions" not in backend.capabilities:
            return await self._generation_is_refused(backend)
        prompts = [self.prompt, self.prompt + " a", "Hello"]
        alone = [await self._greedy(backend, p) for p in prompts]
        together = await asyncio.gather(*(self._greedy(backend, p) for p in prompts))
        assert list(together) == alone
        return None

    @_check
    async def test_stop_string_ends_the_text_before_it(self, backend: Backend) -> None:
        if "completions" not in backend.capabilities:
            return await self._generation_is_refused(backend)
        greedy = await self._greedy(backend)
        cut = next((i for i in range(1, len(greedy)) if not greedy[i].isspace()), None)
        assert cut is not None, f"greedy text {greedy!r} is too short to pick a stop string"
        stop = greedy[cut : cut + 2]
        text, deltas = await generate(
            backend, self.prompt, max_tokens=self.max_tokens, temperature=0.0, stop=(stop,)
        )
        assert stop not in text and greedy.startswith(text)
        assert deltas[-1].finish_reason == "stop"
        return None

    @_check
    async def test_prompt_beyond_the_context_is_a_bad_parameter(self, backend: Backend) -> None:
        if "completions" not in backend.capabilities:
            return await self._generation_is_refused(backend)
        with pytest.raises(BadParameter) as err:
            await generate(backend, self.prompt, max_tokens=backend.context_length + 1)
        assert err.value.code == "context_length_exceeded"
        return None

    @_check
    async def test_closing_a_stream_early_leaves_the_backend_usable(self, backend: Backend) -> None:
        if "completions" not in backend.capabilities:
            return await self._generation_is_refused(backend)
        baseline = await self._greedy(backend)
        stream = backend.generate(
            GenerationRequest(self.prompt, SamplingParams(max_tokens=self.max_tokens))
        )
        first = await anext(aiter(stream))
        assert first.finish_reason is None or first.usage is not None
        await stream.aclose()  # type: ignore[attr-defined]
        assert await self._greedy(backend) == baseline
        return None

    @_check
    async def test_token_id_prompts_are_counted_exactly(self, backend: Backend) -> None:
        if "completions" not in backend.capabilities:
            return await self._generation_is_refused(backend)
        try:
            ids = backend.tokenize(self.prompt)
        except CapabilityNotSupported:
            return None  # the port's documented "cannot count tokens"
        assert ids and all(isinstance(i, int) for i in ids)
        assert isinstance(backend.detokenize(ids), str)
        _, deltas = await generate(backend, ids, max_tokens=1, temperature=0.0)
        usage = deltas[-1].usage
        assert usage is not None and usage.prompt_tokens == len(ids)
        return None

    @_check
    async def test_logprobs_are_log_probabilities(self, backend: Backend) -> None:
        if "completions" not in backend.capabilities:
            return await self._generation_is_refused(backend)
        _, deltas = await generate(backend, self.prompt, max_tokens=3, temperature=0.0, logprobs=2)
        tokens = [lp for d in deltas for lp in d.logprobs]
        assert tokens, "logprobs were requested but no delta carried any"
        for t in tokens:
            assert isinstance(t.token, str)
            assert t.logprob is not None and t.logprob <= 1e-6 and math.isfinite(t.logprob)
            assert len(t.top) <= 2 and all(v <= 1e-6 for v in t.top.values())
        _, plain = await generate(backend, self.prompt, max_tokens=2, temperature=0.0)
        assert all(not d.logprobs for d in plain)  # only when asked for
        return None

    @_check
    async def test_prompt_logprobs_cover_every_prompt_token(self, backend: Backend) -> None:
        try:
            lps = await backend.prompt_logprobs(self.prompt, 1)
        except CapabilityNotSupported:
            return None  # the port's documented default: echo with logprobs is refused
        assert lps and lps[0].logprob is None
        assert all(t.logprob is not None and t.logprob <= 1e-6 for t in lps[1:])
        return None

    @_check
    async def test_chat_prompt_when_chat_is_declared(self, backend: Backend) -> None:
        messages = [{"role": "user", "content": "What is 2 + 3?"}]
        if "chat" not in backend.capabilities:
            with pytest.raises(CapabilityNotSupported):
                backend.chat_prompt(messages)
            return None
        cp = backend.chat_prompt(messages)
        assert isinstance(cp, ChatPrompt)
        assert cp.template_status in ("version", "tokenizer", "mismatch", "upstream")
        if cp.messages is None:  # rendered here: the prompt holds the chat
            assert cp.prompt
            if isinstance(cp.prompt, str):
                assert "What is 2 + 3?" in cp.prompt
        else:  # forwarded to an upstream that applies its own template
            assert cp.messages == messages
        request = GenerationRequest(
            cp.prompt, SamplingParams(max_tokens=2, temperature=0.0), messages=cp.messages
        )
        deltas = [d async for d in backend.generate(request)]
        assert deltas[-1].finish_reason in ("stop", "length")
        assert "".join(d.text for d in deltas) or deltas[-1].usage is not None
        return None

    @_check
    async def test_embeddings_match_the_declared_capability(self, backend: Backend) -> None:
        if "embeddings" not in backend.capabilities:
            with pytest.raises(CapabilityNotSupported):
                await backend.embed(["hello"])
            return None
        out = await backend.embed(["hello world", "a second, longer input text"])
        assert len(out.vectors) == 2 and out.prompt_tokens > 0
        assert len(out.vectors[0]) == len(out.vectors[1]) > 0
        assert all(math.isfinite(x) for v in out.vectors for x in v)
        return None
