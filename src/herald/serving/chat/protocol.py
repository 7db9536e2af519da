"""Wire models of ``POST /v1/chat/completions`` (OpenAI Chat Completions API)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_serializer, model_validator

from herald.serving.backends.base import SamplingParams
from herald.serving.common import SamplingFields, UsageInfo, WireModel
from herald.serving.errors import BadParameter

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ChatMessage(WireModel):
    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    def text(self, index: int) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for j, part in enumerate(self.content):
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise BadParameter(
                    f"content part of type {part.get('type')!r} is not supported: this "
                    "gateway serves text models (send text parts only)",
                    param=f"messages[{index}].content[{j}]",
                )
            parts.append(part["text"])
        return "".join(parts)


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=0)
    max_completion_tokens: int | None = Field(None, ge=0)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> ChatCompletionRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs to be true")
        return self

    def unsupported(self) -> None:
        if self.tools:
            raise BadParameter(
                "tools (tool calling) are not supported by this gateway", param="tools"
            )
        if self.response_format and self.response_format.get("type") not in (None, "text"):
            raise BadParameter(
                "only response_format {'type': 'text'} is supported", param="response_format"
            )

    def prompt_sizes(self) -> list[tuple[str, int]]:
        """Characters of all messages together, for the size check before tokenization."""
        chars = 0
        for m in self.messages:
            if isinstance(m.content, str):
                chars += len(m.content)
            elif m.content:
                chars += sum(len(p["text"]) for p in m.content if isinstance(p.get("text"), str))
        return [("messages", chars)]

    def to_messages(self) -> list[dict[str, Any]]:
        out = []
        for i, m in enumerate(self.messages):
            role = "system" if m.role == "developer" else m.role
            msg: dict[str, Any] = {"role": role, "content": m.text(i)}
            if m.name:
                msg["name"] = m.name
            out.append(msg)
        return out

    def to_sampling_params(self, index: int = 0) -> SamplingParams:
        limit = self.max_completion_tokens if self.max_completion_tokens is not None else None
        return SamplingParams(
            max_tokens=limit if limit is not None else self.max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=self.stop_list(),
            seed=None if self.seed is None else self.seed + index,
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            logprobs=(self.top_logprobs or 0) if self.logprobs else None,
        )


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(BaseModel):
    content: list[ChatTokenLogprob] | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo
    system_fingerprint: str | None = None


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: DeltaMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None

    @field_serializer("delta")
    def _delta(self, delta: DeltaMessage) -> dict[str, Any]:
        return delta.model_dump(exclude_none=True)  # OpenAI omits unset delta fields


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageInfo | None = None
    system_fingerprint: str | None = None
