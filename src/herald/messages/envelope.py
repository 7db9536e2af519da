"""CloudEvents 1.0 envelope around every message."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from herald.errors import PayloadTooLarge

MAX_PAYLOAD_BYTES = 64 * 1024
CONTENT_TYPE = "application/cloudevents+json"


def new_id() -> str:
    """A new, time-ordered event id (UUIDv7 layout)."""
    ms = int(datetime.now(UTC).timestamp() * 1000)
    rand = uuid.uuid4().int & ((1 << 74) - 1)
    value = (
        (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """A CloudEvents 1.0 event with Herald's extensions.

    ``correlationid`` names the flow (defaults to the root event's id), ``causationid`` the event
    that caused this one, ``schemaversion`` the catalog version of ``type`` and ``seq`` the
    position in the event log (assigned on append).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=new_id, min_length=1, max_length=128)
    source: str = Field(default="herald", min_length=1, max_length=512)
    type: str = Field(min_length=1, max_length=256)
    subject: str | None = Field(default=None, max_length=512)
    time: datetime = Field(default_factory=utcnow)
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    correlationid: str = Field(default="", max_length=128)
    causationid: str | None = Field(default=None, max_length=128)
    schemaversion: int = 1
    seq: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, _context: Any) -> None:
        if not self.correlationid:
            object.__setattr__(self, "correlationid", self.id)

    def with_seq(self, seq: int) -> Envelope:
        return self.model_copy(update={"seq": seq})

    def to_cloudevent(self) -> dict[str, Any]:
        """The structured-mode JSON form (``application/cloudevents+json``)."""
        return self.model_dump(mode="json", exclude_none=True)


def payload_size(data: dict[str, Any]) -> int:
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


def check_size(data: dict[str, Any]) -> None:
    size = payload_size(data)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"message payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes (64 KiB). "
            "Store large content as an artifact and send its URI instead."
        )
