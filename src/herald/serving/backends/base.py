"""The serving port: what every model backend (fake, transformers, llamacpp, openai, vllm) offers.

A backend turns a rendered prompt into an async stream of :class:`Delta` (text pieces, per-token
logprobs, and a final ``finish_reason`` with :class:`Usage`). Chat formatting, prompt logprobs
(``echo``) and embeddings are optional capabilities. Backends never see HTTP types.
"""

from __future__ import annotations

import math
from abc import ABC
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from herald.serving.errors import BadParameter, CapabilityNotSupported

Capability = Literal["chat", "completions", "embeddings"]
Prompt = str | list[int]


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings of one generation (``to_sampling_params()`` builds it from a request)."""

    max_tokens: int | None = None  # None: until the context is full
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: int | None = None  # None: no logprobs; k: chosen token + top-k alternatives
    presence_penalty: float = 0.0  # llamacpp, openai, vllm (transformers: not applied)
    frequency_penalty: float = 0.0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class TokenLogprob:
    """One generated (or prompt) token with its log-probability and the top alternatives."""

    token: str
    logprob: float | None
    top: dict[str, float] = field(default_factory=dict)
    token_bytes: list[int] | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Delta:
    """A piece of generated text; the last one of a stream has ``finish_reason`` and ``usage``."""

    text: str = ""
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" | "length" | "error"
    usage: Usage | None = None


@dataclass(frozen=True)
class GenerationRequest:
    prompt: Prompt
    params: SamplingParams
    request_id: str = ""
    messages: list[dict[str, Any]] | None = None  # the chat, for backends that take messages


@dataclass(frozen=True)
class ChatPrompt:
    """A chat rendered with a template; ``template_status`` is reported in a response header:
    ``version`` (the model version's own template), ``tokenizer`` (the tokenizer's),
    ``mismatch`` (the version's template differs from the tokenizer's; the version's is used),
    ``upstream`` (the chat is forwarded as ``messages``; the upstream applies its template)."""

    prompt: Prompt
    template_status: str = "tokenizer"
    messages: list[dict[str, Any]] | None = None  # set by backends that forward the chat


@dataclass(frozen=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int


class Backend(ABC):
    """A loaded model that generates text and/or embeddings. Methods are safe to call
    concurrently; a backend serialises or batches internally."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"chat", "completions"})
    max_concurrency: int = 1  # requests handed to the backend at once (more wait in the queue)

    def __init__(self, model: str, **options: Any) -> None:
        self.model = model
        self.options = options
        self.context_length: int = int(options.get("context_length", 2048))
        if options.get("max_concurrency"):
            self.max_concurrency = int(options["max_concurrency"])

    async def load(self) -> None:
        """Load weights (called once, before the first request)."""

    async def close(self) -> None:
        """Free weights and threads."""

    async def health(self) -> bool:
        """Whether the backend can serve now (deployments use it for health checks)."""
        return True

    def describe(self) -> dict[str, Any]:
        """Facts for ``/v1/models`` and logs (backend name, context length, ...)."""
        return {"backend": self.name, "context_length": self.context_length}

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        raise CapabilityNotSupported(f"backend {self.name!r} cannot count tokens")

    def detokenize(self, ids: list[int]) -> str:
        """Text of token ids (``echo`` of token-id prompts)."""
        raise CapabilityNotSupported(f"backend {self.name!r} cannot decode token ids")

    def chat_prompt(self, messages: list[dict[str, Any]]) -> ChatPrompt:
        """Render chat messages with the model's chat template (generation prompt appended)."""
        raise CapabilityNotSupported(f"backend {self.name!r} does not serve chat")

    def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Stream the completion of ``request.prompt``; closing the iterator cancels it."""
        raise CapabilityNotSupported(f"backend {self.name!r} does not generate text")

    async def prompt_logprobs(self, prompt: Prompt, top: int) -> list[TokenLogprob]:
        """Logprobs of every prompt token (the first is ``None``) for ``echo`` + ``logprobs``."""
        raise CapabilityNotSupported(
            f"backend {self.name!r} cannot return prompt logprobs (echo with logprobs)",
            param="echo",
        )

    async def embed(self, inputs: Sequence[str | list[int]]) -> Embeddings:
        """One vector per input."""
        raise CapabilityNotSupported(f"backend {self.name!r} does not compute embeddings")

    # helpers for subclasses -----------------------------------------------------------------
    def check_context(self, prompt_tokens: int, max_tokens: int | None) -> int:
        """Raise a 400 naming the limits if the prompt (+ max_tokens) does not fit; return the
        number of tokens that may be generated."""
        room = self.context_length - prompt_tokens
        if room < 0 or (max_tokens is not None and max_tokens > room):
            asked = f" + {max_tokens} completion tokens" if max_tokens is not None else ""
            raise BadParameter(
                f"This model's maximum context length is {self.context_length} tokens. However, "
                f"you requested {prompt_tokens + (max_tokens or 0)} tokens ({prompt_tokens} in "
                f"the prompt{asked}). Please reduce the length of the prompt or of max_tokens.",
                param="messages" if max_tokens is None else "max_tokens",
                code="context_length_exceeded",
            )
        return room if max_tokens is None else max_tokens


class StopBuffer:
    """Finds stop strings in streamed text, holding back text that may start a stop string."""

    def __init__(self, stop: Sequence[str]) -> None:
        self.stop = [s for s in stop if s]
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add text; return (text safe to emit, whether a stop string was hit)."""
        if not self.stop:
            return text, False
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stop) if i >= 0]
        if hits:
            out = self.pending[: min(hits)]
            self.pending = ""
            return out, True
        cut = max(len(self.pending) - self.hold, 0)
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


def top_logprobs(logprobs: Any, k: int, decode: Any) -> dict[str, float]:
    """The top-``k`` entries of a 1-D tensor of logprobs as {token text: logprob}."""
    if k <= 0:
        return {}
    values, ids = logprobs.topk(k)
    out: dict[str, float] = {}
    for v, i in zip(values.tolist(), ids.tolist(), strict=True):
        out.setdefault(decode(i), _finite(v))
    return out


def _finite(v: float) -> float:
    return v if math.isfinite(v) else -9999.0
