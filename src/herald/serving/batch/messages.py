"""Batch inference messages: ``batch.requested`` → job ``serving.batch`` → ``batch.completed``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from herald.messages.base import Message

Endpoint = Literal["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]


class BatchRequested(Message, type="batch.requested"):
    """Run an OpenAI Batch-format JSONL file (one request per line) through the gateway."""

    batch_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    input_uri: str = Field(description="artifact URI or key of the input JSONL")
    endpoint: Endpoint = "/v1/chat/completions"
    concurrency: int = Field(4, ge=1, le=64)
    metadata: dict[str, str] = Field(default_factory=dict)


class BatchCompleted(Message, type="batch.completed"):
    """A batch finished; ``output_uri`` holds one result line per input line."""

    batch_id: str
    status: Literal["completed", "failed"] = "completed"
    output_uri: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    duration_s: float = 0.0
    error: str | None = None
    job_id: str | None = None
