"""What a running job sees: progress, logs, live messages and cancellation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from herald.errors import ConfigurationError
from herald.messages.base import Message

if TYPE_CHECKING:
    from herald.services import Services

Sink = Callable[[dict[str, Any]], None]


class JobContext:
    """Passed to a job function that declares a ``ctx`` parameter.

    ``ctx.progress(0.4, "epoch 2/5", loss=1.23)`` publishes ``job.progressed``;
    ``ctx.emit(msg)`` publishes a message live (fenced by the job's lease);
    ``ctx.cancelled`` turns true when a user cancels the job.
    """

    def __init__(
        self,
        job_id: str,
        name: str,
        attempt: int,
        params: dict[str, Any],
        sink: Sink,
        services: Services | None = None,
        *,
        services_factory: Callable[[], Services] | None = None,
    ) -> None:
        self.job_id = job_id
        self.name = name
        self.attempt = attempt
        self.params = params
        self._sink = sink
        self._cancel = threading.Event()
        self._services = services
        self._services_factory = services_factory
        self._services_lock = threading.Lock()

    @property
    def has_services(self) -> bool:
        return self._services is not None or self._services_factory is not None

    @property
    def services(self) -> Services:
        """The worker's services (``inline``), else the job process's (built on first use by
        the factory its entry point, :mod:`herald.jobprocess`, passes)."""
        with self._services_lock:
            if self._services is None and self._services_factory is not None:
                self._services = self._services_factory()
            if self._services is None:
                raise ConfigurationError(
                    f"job {self.name}: this context has no services (a JobContext made by hand "
                    "takes services=Services(settings))"
                )
            return self._services

    def progress(
        self, fraction: float | None = None, message: str | None = None, **metrics: float
    ) -> None:
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress fraction must be within 0..1, got {fraction}")
        self._sink(
            {"kind": "progress", "progress": fraction, "message": message, "metrics": metrics}
        )

    def log(self, line: str) -> None:
        self._sink({"kind": "log", "stream": "job", "line": str(line)})

    def emit(self, message: Message, *, subject: str | None = None) -> None:
        if not isinstance(message, Message):
            raise TypeError(f"ctx.emit expects a herald.Message, got {type(message).__name__}")
        self._sink(
            {
                "kind": "emit",
                "type": message.message_type,
                "data": message.payload(),
                "subject": subject,
            }
        )

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()


def split_result(result: Any) -> tuple[list[Message], Any]:
    """A job's return value → (messages to emit, JSON result)."""
    if isinstance(result, Message):
        return [result], None
    if isinstance(result, list | tuple) and result and all(isinstance(m, Message) for m in result):
        return list(result), None
    return [], result
