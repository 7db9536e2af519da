"""Wire models of ``POST /v1/completions`` (OpenAI legacy Completions API, as lm-eval uses it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from herald.serving.backends.base import Prompt, SamplingParams
from herald.serving.common import SamplingFields, UsageInfo
from herald.serving.errors import BadParameter


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(16, ge=0)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1)

    def prompts(self) -> list[Prompt]:
        p = self.prompt
        if isinstance(p, str):
            return [p]
        if not p:
            raise BadParameter("prompt must not be empty", param="prompt")
        if all(isinstance(x, int) for x in p):
            return [list(p)]  # type: ignore[arg-type]
        return list(p)  # type: ignore[arg-type]

    def prompt_sizes(self) -> list[tuple[str, int]]:
        """Characters of each text prompt (token-id prompts need no tokenization)."""
        p = self.prompt
        if isinstance(p, str):
            return [("prompt", len(p))]
        return [(f"prompt[{i}]", len(x)) for i, x in enumerate(p) if isinstance(x, str)]

    def unsupported(self) -> None:
        if self.suffix:
            raise BadParameter("suffix (insertion) is not supported", param="suffix")
        if self.best_of is not None and self.best_of != self.n:
            raise BadParameter("best_of other than n is not supported", param="best_of")

    def to_sampling_params(self, index: int = 0) -> SamplingParams:
        return SamplingParams(
            max_tokens=self.max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=self.stop_list(),
            seed=None if self.seed is None else self.seed + index,
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            logprobs=self.logprobs,
        )


class CompletionLogprobs(BaseModel):
    tokens: list[str] = Field(default_factory=list)
    token_logprobs: list[float | None] = Field(default_factory=list)
    top_logprobs: list[dict[str, float] | None] = Field(default_factory=list)
    text_offset: list[int] = Field(default_factory=list)


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None
    system_fingerprint: str | None = None
