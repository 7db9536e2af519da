"""The executor port: where a leased job's function actually runs."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from herald.bus.base import JobRecord
from herald.jobs.registry import JobDefinition

Sink = Callable[[dict[str, Any]], None]


class JobFailure(Exception):
    """The job function raised or its process died; ``str()`` is the reason shown to users.

    ``retryable`` is false when another attempt cannot succeed (the job raised a Herald error
    of the 4xx kind: invalid input, unknown model, bad data set).
    """

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.retryable = retryable


def is_retryable(exc: BaseException) -> bool:
    """Errors a retry may fix: anything but a Herald error about the request itself."""
    from herald.errors import HeraldError

    return not (isinstance(exc, HeraldError) and exc.status < 500)


class Executor(abc.ABC):
    """Runs one job attempt; cancelling the awaiting task must stop the job."""

    name: str
    capacity: int

    @abc.abstractmethod
    async def run(self, job: JobRecord, definition: JobDefinition, sink: Sink) -> dict[str, Any]:
        """Run the job; return ``{"messages": [{"type","data","subject"}], "value": result}``."""

    async def close(self) -> None:
        """Release resources (processes, clusters)."""
