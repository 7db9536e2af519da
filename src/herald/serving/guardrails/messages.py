"""``guardrail.triggered``: guardrail hits, aggregated per model/rule over a short window so a
flood of violations becomes a handful of messages, not one per request."""

from __future__ import annotations

from pydantic import Field

from herald.messages.base import Message


class GuardrailTriggered(Message, type="guardrail.triggered"):
    """A guardrail rule matched ``count`` times in ``requests`` requests during the window."""

    model: str
    version: str = ""
    rule: str
    rule_type: str
    action: str = Field(description="redact | block | flag")
    direction: str = Field(description="input | output")
    count: int
    requests: int
    kinds: dict[str, int] = Field(default_factory=dict)
    sample_request_ids: list[str] = Field(default_factory=list)
    window_start: float
    window_end: float
    dropped_keys: int = Field(0, description="other (model, rule) keys left out of this window")
