"""Wire models of ``POST /v1/embeddings``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from herald.serving.common import WireModel
from herald.serving.errors import BadParameter


class EmbeddingRequest(WireModel):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None

    def prompt_sizes(self) -> list[tuple[str, int]]:
        """Characters of each text input (token-id inputs need no tokenization)."""
        x = self.input
        if isinstance(x, str):
            return [("input", len(x))]
        return [(f"input[{i}]", len(s)) for i, s in enumerate(x) if isinstance(s, str)]

    def inputs(self) -> list[str | list[int]]:
        x = self.input
        if isinstance(x, str):
            items: list[str | list[int]] = [x]
        elif not x:
            raise BadParameter("input must not be empty", param="input")
        elif all(isinstance(i, int) for i in x):
            items = [list(x)]  # type: ignore[arg-type]
        else:
            items = list(x)  # type: ignore[arg-type]
        for i, item in enumerate(items):
            if not item:
                raise BadParameter("input must not contain empty items", param=f"input[{i}]")
        if len(items) > 2048:
            raise BadParameter("at most 2048 inputs per request", param="input")
        return items


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str
    index: int


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage
