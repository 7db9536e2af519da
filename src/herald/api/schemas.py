"""Wire models of the control plane (kept apart from domain objects)."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from herald.bus.base import DeadLetter, JobRecord, LogLine


class PublishRequest(BaseModel):
    """``POST /v1/messages``: a message type, its data, and optional routing attributes."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(min_length=1, max_length=256, description="Catalog type name.")
    data: dict[str, Any] = Field(default_factory=dict, description="The message payload.")
    subject: str | None = Field(None, max_length=512)
    correlationid: str | None = Field(None, max_length=128, description="Join an existing flow.")
    causationid: str | None = Field(
        None, max_length=128, description="The message that caused this."
    )
    id: str | None = Field(
        None, max_length=128, description="Client-chosen id (idempotent publish)."
    )
    source: str | None = Field(None, max_length=512)


class JobSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    executor: str | None = None


def job_json(j: JobRecord) -> dict[str, Any]:
    d = dataclasses.asdict(j)
    d.pop("lease_token", None)
    for k, v in list(d.items()):
        if hasattr(v, "isoformat"):
            d[k] = v.isoformat()
    return d


def dead_letter_json(d: DeadLetter) -> dict[str, Any]:
    out = dataclasses.asdict(d)
    for k, v in list(out.items()):
        if hasattr(v, "isoformat"):
            out[k] = v.isoformat()
    return out


def log_json(line: LogLine) -> dict[str, Any]:
    return {
        "seq": line.seq,
        "time": line.time.isoformat(),
        "stream": line.stream,
        "line": line.line,
    }
