"""Job functions the executor kit runs: import this module (or pass ``KIT_PLUGIN`` to the
executor as a plugin) wherever the executor runs job functions: in the worker, in a job
subprocess, on a cluster node.

They register in the default job registry under ``herald.testing.*`` names; the message they
produce is not added to the message catalog.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from herald.errors import JobError
from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.messages.base import Message

__all__ = ["KIT_PLUGIN", "KitProbed"]

KIT_PLUGIN = "herald.testing.jobs"


class KitProbed(Message, type="herald.testing.probed", register=False):
    """Produced by the executor kit's jobs."""

    n: int


@job(name="herald.testing.echo")
def echo(
    text: str, times: int = 1, extra: dict[str, Any] | None = None, ctx: JobContext | None = None
) -> dict[str, Any]:
    """Report progress, a log line and a live message, then return the parameters."""
    assert ctx is not None
    ctx.progress(0.5, "half way", loss=1.5)
    ctx.log("kit log line")
    ctx.emit(KitProbed(n=times), subject="probe")
    return {"text": text * times, "extra": extra, "attempt": ctx.attempt, "job_id": ctx.job_id}


@job(name="herald.testing.messages")
def messages(n: int) -> list[KitProbed]:
    """Return ``n`` messages (the executor hands them back for the worker to emit)."""
    return [KitProbed(n=i) for i in range(n)]


@job(name="herald.testing.async_double")
async def async_double(x: int) -> int:
    """A coroutine job function."""
    await asyncio.sleep(0)
    return 2 * x


@job(name="herald.testing.fail")
def fail(kind: str) -> None:
    """Raise a plain error (``kind="crash"``) or a request error (``kind="request"``)."""
    if kind == "request":
        raise JobError("the request itself is wrong")
    raise ValueError("boom")


@job(name="herald.testing.until_cancelled")
def until_cancelled(path: str, ctx: JobContext | None = None) -> str:
    """Append a line to ``path`` every 20 ms until cancelled."""
    assert ctx is not None
    out = Path(path)
    while not ctx.cancelled:
        with out.open("a") as f:
            f.write("tick\n")
        time.sleep(0.02)
    return "stopped"
