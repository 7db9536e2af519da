"""Sensor definitions: the decorator, the context handed to handlers, and the registry."""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from herald.bus.base import JobSpec
from herald.errors import ConfigurationError
from herald.messages.base import Message
from herald.messages.envelope import Envelope

if TYPE_CHECKING:
    from herald.services import Services

Start = Literal["latest", "earliest"]
TypeRef = type[Message] | str


def _type_name(t: TypeRef) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, type) and issubclass(t, Message) and t.message_type:
        return t.message_type
    raise ConfigurationError(f"sensor on= expects message classes or type names, got {t!r}")


@dataclass
class SensorSpec:
    """A named, durable consumer of one or more message types."""

    name: str
    types: tuple[str, ...]
    handler: Callable[..., Any]
    where: Callable[[Any], bool] | None = None
    start: Start = "latest"
    max_attempts: int | None = None
    timeout_s: float | None = None
    description: str = ""
    origin: str = ""
    kind: Literal["python", "rule", "cron"] = "python"
    cron: str | None = None
    emits: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "on": list(self.types),
            "kind": self.kind,
            "cron": self.cron,
            "description": self.description,
            "origin": self.origin,
            "start": self.start,
        }


class SensorRegistry:
    """Sensors by name; the decorator adds to :data:`default_registry`."""

    def __init__(self) -> None:
        self._specs: dict[str, SensorSpec] = {}

    def add(self, spec: SensorSpec) -> SensorSpec:
        old = self._specs.get(spec.name)
        if old is not None and old.origin != spec.origin:
            raise ConfigurationError(
                f"two sensors are named {spec.name!r} ({old.origin} and {spec.origin}); "
                "pass name= to one of them"
            )
        self._specs[spec.name] = spec
        return spec

    def add_all(self, specs: list[SensorSpec]) -> list[SensorSpec]:
        """Add several sensors or none: a name clash leaves the registry as it was."""
        names: dict[str, str] = {}
        for spec in specs:
            old = self._specs.get(spec.name)
            other = names.get(spec.name)
            if (old is not None and old.origin != spec.origin) or other is not None:
                first = old.origin if old is not None and old.origin != spec.origin else other
                raise ConfigurationError(
                    f"two sensors are named {spec.name!r} ({first} and {spec.origin}); "
                    "rename one of them"
                )
            names[spec.name] = spec.origin
        for spec in specs:
            self._specs[spec.name] = spec
        return specs

    def remove(self, name: str) -> None:
        self._specs.pop(name, None)

    def get(self, name: str) -> SensorSpec | None:
        return self._specs.get(name)

    def all(self) -> list[SensorSpec]:
        return sorted(self._specs.values(), key=lambda s: s.name)

    def clear(self) -> None:
        self._specs.clear()


default_registry = SensorRegistry()


def sensor(
    *,
    on: TypeRef | Sequence[TypeRef],
    where: Callable[[Any], bool] | None = None,
    name: str | None = None,
    start: Start = "latest",
    max_attempts: int | None = None,
    timeout_s: float | None = None,
    registry: SensorRegistry | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a sensor: ``fn(msg, ctx)`` runs for each message of the ``on`` types.

    ``where`` filters messages (a function of the typed message). The handler returns a message,
    a list of messages or ``None``; returned messages are emitted, caused by the input message.
    New sensors start at the end of the log (``start="latest"``) unless ``start="earliest"``.
    """
    refs: Iterable[TypeRef] = [on] if isinstance(on, str | type) else on
    types = tuple(_type_name(t) for t in refs)
    if not types:
        raise ConfigurationError("sensor on= needs at least one message type")
    if start not in ("latest", "earliest"):
        raise ConfigurationError("sensor start= must be 'latest' or 'earliest'")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        params = inspect.signature(fn).parameters
        if not 1 <= len(params) <= 2:
            raise ConfigurationError(
                f"sensor {fn.__qualname__} must take (msg) or (msg, ctx), not {len(params)} arguments"
            )
        spec = SensorSpec(
            name=name or default_name(fn),
            types=types,
            handler=fn,
            where=where,
            start=start,
            max_attempts=max_attempts,
            timeout_s=timeout_s,
            description=(fn.__doc__ or "").strip(),
            origin=f"{fn.__module__}:{fn.__qualname__}",
        )
        (registry or default_registry).add(spec)
        fn.__herald_sensor__ = spec  # type: ignore[attr-defined]
        return fn

    return deco


def default_name(fn: Callable[..., Any]) -> str:
    """``module.function``; plugin files use their file stem as the module part."""
    import sys

    module = sys.modules.get(fn.__module__)
    mod = getattr(module, "__herald_name__", None) or fn.__module__
    return f"{mod}.{fn.__qualname__}".removeprefix("__main__.")


@dataclass
class JobRequest:
    """A job asked for by a sensor through :meth:`SensorContext.run_job`."""

    id: str
    name: str
    params: dict[str, Any]
    executor: str | None = None
    max_attempts: int | None = None
    timeout_s: float | None = None


@dataclass
class SensorContext:
    """What a sensor handler may use; side effects go through it so they commit atomically."""

    event: Envelope
    sensor: str
    attempt: int = 1
    log: logging.Logger | logging.LoggerAdapter[logging.Logger] = field(
        default_factory=lambda: logging.getLogger("herald.sensor")
    )
    emitted: list[tuple[Message, str | None]] = field(default_factory=list)
    jobs: list[JobRequest] = field(default_factory=list)
    # the running Herald's settings, registry, artifacts and event log (None only where a
    # test calls a handler with a hand-made context)
    services: Services | None = None

    def emit(self, message: Message, *, subject: str | None = None) -> None:
        """Emit a message caused by the current event (committed with the sensor's outcome)."""
        if not isinstance(message, Message):
            raise TypeError(f"ctx.emit expects a herald.Message, got {type(message).__name__}")
        self.emitted.append((message, subject))

    def run_job(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        executor: str | None = None,
        max_attempts: int | None = None,
        timeout_s: float | None = None,
    ) -> str:
        """Request job ``name`` with ``params``; returns the job id (queued on commit)."""
        job_id = uuid.uuid4().hex
        self.jobs.append(
            JobRequest(
                id=job_id,
                name=name,
                params=dict(params or {}),
                executor=executor,
                max_attempts=max_attempts,
                timeout_s=timeout_s,
            )
        )
        return job_id


def to_job_spec(
    req: JobRequest, *, executor: str, max_attempts: int, sensor: str | None
) -> JobSpec:
    return JobSpec(
        id=req.id,
        name=req.name,
        params=req.params,
        executor=req.executor or executor,
        max_attempts=req.max_attempts or max_attempts,
        timeout_s=req.timeout_s,
        sensor=sensor,
    )
