"""Message types of the prompt registry: ``prompt.registered`` and ``prompt.promoted``."""

from __future__ import annotations

from pydantic import Field

from herald.messages.base import Message


class PromptRegistered(Message, type="prompt.registered"):
    """A new version of a prompt template was stored (``prompts:/name/version``)."""

    name: str
    version: int = Field(ge=1)
    uri: str
    variables: list[str] = Field(default_factory=list)
    description: str = ""


class PromptPromoted(Message, type="prompt.promoted"):
    """An alias (``production``, ``staging``…) now points at a prompt version."""

    name: str
    version: int = Field(ge=1)
    alias: str
    uri: str
    previous_version: int | None = None
