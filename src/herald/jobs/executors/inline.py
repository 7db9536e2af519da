"""``inline``: run the job function inside the worker process (light work only)."""

from __future__ import annotations

import asyncio
import inspect
import traceback
from typing import TYPE_CHECKING, Any

from herald.bus.base import JobRecord
from herald.jobs.context import JobContext, split_result
from herald.jobs.executors.base import Executor, JobFailure, Sink, is_retryable
from herald.jobs.registry import JobDefinition

if TYPE_CHECKING:
    from herald.services import Services


class InlineExecutor(Executor):
    name = "inline"

    def __init__(self, capacity: int = 8, services: Services | None = None) -> None:
        self.capacity = capacity
        self.services = services  # the worker's: an inline job runs in its process

    async def run(self, job: JobRecord, definition: JobDefinition, sink: Sink) -> dict[str, Any]:
        ctx = JobContext(job.id, job.name, job.attempt, job.params, sink, self.services)
        kwargs = dict(job.params)
        if definition.ctx_param:
            kwargs[definition.ctx_param] = ctx
        try:
            if inspect.iscoroutinefunction(definition.fn):
                result = await definition.fn(**kwargs)
            else:
                result = await asyncio.to_thread(definition.fn, **kwargs)
        except asyncio.CancelledError:
            ctx.cancel()
            raise
        except Exception as exc:
            tb = traceback.format_exc(limit=8)
            for line in tb.rstrip().splitlines():
                sink({"kind": "log", "stream": "stderr", "line": line})
            raise JobFailure(f"{type(exc).__name__}: {exc}", retryable=is_retryable(exc)) from exc
        return encode_result(result)


def encode_result(result: Any) -> dict[str, Any]:
    messages, value = split_result(result)
    return {
        "messages": [
            {"type": m.message_type, "data": m.payload(), "subject": None} for m in messages
        ],
        "value": value,
    }
