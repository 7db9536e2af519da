"""A deterministic backend for tests of the gateway: a real, registered backend with no model.

Tokens are whitespace-separated words (plus the space before them). A completion echoes the
last user words, cycling through a fixed vocabulary until ``max_tokens``; logprobs are fixed
functions of the position. Options: ``reply`` (fixed reply text), ``delay_s`` (sleep per token,
for cancellation tests), ``context_length``, ``fail_after`` (raise after N tokens: a backend
that crashes mid-stream), ``embedding_dim``.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from herald.serving.backends.base import (
    Backend,
    Capability,
    ChatPrompt,
    Delta,
    Embeddings,
    GenerationRequest,
    Prompt,
    StopBuffer,
    TokenLogprob,
    Usage,
)

VOCAB = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "."]
_WORD = re.compile(r"\s*\S+")


class FakeBackend(Backend):
    name = "fake"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"chat", "completions", "embeddings"})
    max_concurrency = 64

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        self.reply: str | None = options.get("reply")
        self.delay_s = float(options.get("delay_s", 0.0))
        self.fail_after: int | None = options.get("fail_after")
        self.dim = int(options.get("embedding_dim", 8))
        self.started = 0  # generations started (tests)
        self.cancelled = 0  # generations closed before finishing (tests)
        self.loaded = False

    async def load(self) -> None:
        self.loaded = True

    async def health(self) -> bool:
        return self.loaded and bool(self.options.get("healthy", True))

    def tokenize(self, text: str) -> list[int]:
        return [_id(w) for w in _WORD.findall(text)]

    def detokenize(self, ids: list[int]) -> str:
        return "".join(f" t{i}" for i in ids)

    def _words(self, prompt: Prompt) -> list[str]:
        if isinstance(prompt, list):
            return [f" t{i}" for i in prompt]
        return _WORD.findall(prompt)

    def chat_prompt(self, messages: list[dict[str, Any]]) -> ChatPrompt:
        text = "".join(f"<{m['role']}> {m.get('content') or ''}\n" for m in messages)
        return ChatPrompt(text + "<assistant>", "tokenizer")

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self.started += 1
        p = request.params
        prompt_tokens = len(self._words(request.prompt))
        limit = self.check_context(prompt_tokens, p.max_tokens)
        reply = _WORD.findall(self.reply) if self.reply is not None else None
        stop = StopBuffer(p.stop)
        done = False
        n = 0
        try:
            while n < limit:
                if self.fail_after is not None and n >= self.fail_after:
                    raise RuntimeError("fake backend crashed mid-stream")
                if reply is not None and n >= len(reply):
                    break
                word = reply[n] if reply is not None else " " + VOCAB[(n + (p.seed or 0)) % 10]
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                n += 1
                text, hit = stop.feed(word)
                lp = _logprob(n)
                logprobs = (
                    [TokenLogprob(word, lp, _top(word, lp, p.logprobs))]
                    if p.logprobs is not None
                    else []
                )
                if hit:
                    yield Delta(text, logprobs)
                    yield Delta(finish_reason="stop", usage=Usage(prompt_tokens, n))
                    done = True
                    return
                if text or logprobs:
                    yield Delta(text, logprobs)
                await asyncio.sleep(0)
            tail = stop.flush()
            finish = "length" if n >= limit and (reply is None or n < len(reply)) else "stop"
            yield Delta(tail, finish_reason=finish, usage=Usage(prompt_tokens, n))
            done = True
        finally:
            if not done:
                self.cancelled += 1

    async def prompt_logprobs(self, prompt: Prompt, top: int) -> list[TokenLogprob]:
        out: list[TokenLogprob] = []
        for i, w in enumerate(self._words(prompt)):
            lp = None if i == 0 else _logprob(i)
            out.append(TokenLogprob(w, lp, {} if lp is None else _top(w, lp, top)))
        return out

    async def embed(self, inputs: Sequence[str | list[int]]) -> Embeddings:
        vectors = []
        tokens = 0
        for item in inputs:
            text = item if isinstance(item, str) else " ".join(f"t{i}" for i in item)
            tokens += len(self._words(text)) if isinstance(item, str) else len(item)
            digest = hashlib.sha256(text.encode()).digest()
            raw = [(digest[i % 32] - 127.5) / 127.5 for i in range(self.dim)]
            norm = math.sqrt(sum(x * x for x in raw)) or 1.0
            vectors.append([x / norm for x in raw])
        return Embeddings(vectors, tokens)


def _id(word: str) -> int:
    return int.from_bytes(hashlib.sha256(word.strip().encode()).digest()[:2], "big")


def _logprob(position: int) -> float:
    return -round(0.1 + (position % 7) * 0.25, 4)


def _top(word: str, lp: float, k: int | None) -> dict[str, float]:
    if not k:
        return {}
    out = {word: lp}
    for i, alt in enumerate(VOCAB):
        if len(out) >= k:
            break
        out.setdefault(" " + alt, lp - 1.0 - i)
    return out
