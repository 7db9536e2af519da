"""Shared wire helpers of the endpoints: request parsing with OpenAI-style 400s, ids, SSE."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from herald.serving.errors import BadParameter

M = TypeVar("M", bound=BaseModel)


class WireModel(BaseModel):
    """Base of request models: unknown fields are accepted and ignored, like vLLM does."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class StreamOptions(BaseModel):
    include_usage: bool = False


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class SamplingFields(WireModel):
    """Fields shared by chat and completions requests."""

    model: str = Field(min_length=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        return v

    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


def parse_request(cls: type[M], raw: bytes) -> M:
    """Validate a JSON body; a bad field becomes a 400 whose ``param`` names it."""
    try:
        data = json.loads(raw or b"null")
    except ValueError as exc:
        raise BadParameter(
            f"We could not parse the JSON body of your request: {exc}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise BadParameter("the request body must be a JSON object", code="invalid_json")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = [str(p) for p in err.get("loc", ())]
        param = _param(loc)
        if err.get("type") == "missing":
            raise BadParameter(f"Missing required parameter: '{param}'.", param=param) from None
        raise BadParameter(
            f"Invalid value for '{param}': {err.get('msg', 'invalid')}.", param=param
        ) from None


def _param(loc: list[str]) -> str:
    # pydantic puts union member names into locations ("str", "list[int]"); drop them
    parts = [p for p in loc if not any(c in p for c in "[]") and p not in {"str", "int"}]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def sse(obj: BaseModel | dict[str, Any]) -> bytes:
    body = obj.model_dump_json() if isinstance(obj, BaseModel) else json.dumps(obj)
    return b"data: " + body.encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"
