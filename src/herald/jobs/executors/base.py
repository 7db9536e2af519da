"""The executor port: where a leased job's function actually runs."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from herald.bus.base import JobRecord
from herald.jobs.registry import JobDefinition

Sink = Callable[[dict[str, Any]], None]


class JobFailure(Exception):
    """The job function raised or its process died; ``str()`` is the reason shown to users."""


class Executor(abc.ABC):
    """Runs one job attempt; cancelling the awaiting task must stop the job."""

    name: str
    capacity: int

    @abc.abstractmethod
    async def run(self, job: JobRecord, definition: JobDefinition, sink: Sink) -> dict[str, Any]:
        """Run the job; return ``{"messages": [{"type","data","subject"}], "value": result}``."""

    async def close(self) -> None:
        """Release resources (processes, clusters)."""
