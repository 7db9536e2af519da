"""The typed message base class.

A message type is a pydantic model declared with a ``type=`` class keyword::

    class OrderPlaced(herald.Message, type="acme.order.placed"):
        order_id: str

Declaring the class registers it in the default catalog.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")


class Message(BaseModel):
    """Base class of every typed message; subclass with ``type="dotted.name"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_type: ClassVar[str] = ""
    message_version: ClassVar[int] = 1
    message_description: ClassVar[str] = ""
    _herald_register: ClassVar[bool] = True

    def __init_subclass__(
        cls,
        *,
        type: str | None = None,
        version: int = 1,
        register: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if type is None:
            return
        if not TYPE_NAME.match(type):
            raise ValueError(
                f"message type {type!r} must be dotted lower-case words, e.g. 'acme.order.placed'"
            )
        if version < 1:
            raise ValueError("message version must be >= 1")
        cls.message_type = type
        cls.message_version = version
        cls.message_description = (cls.__doc__ or "").strip()
        cls._herald_register = register

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("message_type") and cls._herald_register:
            from herald.messages.catalog import default_catalog

            default_catalog.register(cls)

    def payload(self) -> dict[str, Any]:
        """The JSON-compatible payload of this message."""
        return self.model_dump(mode="json")
