"""The catalog of message types: lookup, validation, JSON Schema and AsyncAPI."""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydantic import ValidationError

from herald.errors import MessageValidationError, UnknownMessageType
from herald.messages.base import Message
from herald.messages.envelope import Envelope, check_size
from herald.security.privilege import refuse_operator_fields

log = logging.getLogger(__name__)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


class Catalog:
    """Message types by name."""

    def __init__(self) -> None:
        self._types: dict[str, type[Message]] = {}
        self._lock = threading.Lock()

    def register(self, cls: type[Message]) -> type[Message]:
        """Add (or replace) a message class under its ``message_type``."""
        name = cls.message_type
        if not name:
            raise ValueError(f"{cls.__qualname__} has no type=; declare it with type='a.b'")
        with self._lock:
            old = self._types.get(name)
            if (
                old is not None
                and old is not cls
                and old.model_json_schema() != cls.model_json_schema()
            ):
                log.warning(
                    "message type %s redefined by %s.%s; the newer definition wins",
                    name,
                    cls.__module__,
                    cls.__qualname__,
                )
            self._types[name] = cls
        return cls

    def unregister(self, name: str) -> None:
        with self._lock:
            self._types.pop(name, None)

    def get(self, name: str) -> type[Message]:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownMessageType(
                f"unknown message type {name!r}; see GET /v1/catalog for the known types",
                details={"type": name},
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        return sorted(self._types)

    def validate(self, name: str, data: Any) -> Message:
        """Validate ``data`` as message ``name``; raises a 422-style error on failure."""
        cls = self.get(name)
        if not isinstance(data, dict):
            raise MessageValidationError(
                f"data of {name!r} must be a JSON object, got {type(data).__name__}",
                details=[{"loc": ["data"], "msg": "must be an object", "type": "dict_type"}],
            )
        check_size(data)
        refuse_operator_fields(data, f"message {name!r}")  # trust_remote_code & co: 422
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            errors = _errors(exc)
            first = errors[0]
            where = ".".join(str(p) for p in first["loc"]) or "data"
            raise MessageValidationError(
                f"invalid {name!r} payload: {where}: {first['msg']}"
                + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                details=errors,
            ) from None

    def envelope(
        self,
        message: Message,
        *,
        subject: str | None = None,
        correlationid: str | None = None,
        causationid: str | None = None,
        source: str = "herald",
        id: str | None = None,
    ) -> Envelope:
        """Wrap a typed message in an envelope (checks the 64 KiB limit)."""
        data = message.payload()
        check_size(data)
        extra: dict[str, Any] = {"id": id} if id else {}
        return Envelope(
            type=message.message_type,
            source=source,
            subject=subject,
            correlationid=correlationid or "",
            causationid=causationid,
            schemaversion=message.message_version,
            dataschema=f"/v1/catalog/{message.message_type}",
            data=data,
            **extra,
        )

    def describe(self, name: str) -> dict[str, Any]:
        cls = self.get(name)
        return {
            "type": name,
            "version": cls.message_version,
            "description": cls.message_description,
            "schema": cls.model_json_schema(),
            "python": f"{cls.__module__}.{cls.__qualname__}",
        }

    def to_json(self) -> dict[str, Any]:
        return {"types": [self.describe(n) for n in self.names()]}

    def asyncapi(self, *, title: str = "Herald", version: str = "1") -> dict[str, Any]:
        """An AsyncAPI 3.0 document: one channel and one message per type."""
        channels: dict[str, Any] = {}
        messages: dict[str, Any] = {}
        operations: dict[str, Any] = {}
        schemas: dict[str, Any] = {}
        for name in self.names():
            cls = self._types[name]
            key = name.replace(".", "_")
            payload = cls.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(payload.pop("$defs", {}))
            messages[key] = {
                "name": name,
                "title": cls.__name__,
                "summary": cls.message_description or name,
                "contentType": "application/cloudevents+json",
                "payload": payload,
                "x-herald-version": cls.message_version,
            }
            channels[key] = {
                "address": name,
                "messages": {key: {"$ref": f"#/components/messages/{key}"}},
            }
            operations[f"publish_{key}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{key}"},
                "summary": f"Publish {name} (POST /v1/messages)",
            }
        return {
            "asyncapi": "3.0.0",
            "info": {
                "title": title,
                "version": version,
                "description": "Typed messages accepted by Herald. Each message travels in a "
                "CloudEvents 1.0 envelope with correlationid/causationid extensions.",
            },
            "defaultContentType": "application/cloudevents+json",
            "channels": channels,
            "operations": operations,
            "components": {"messages": messages, "schemas": schemas},
        }


default_catalog = Catalog()
