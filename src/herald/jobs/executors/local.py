"""``local``: each job attempt in its own Python subprocess (the default for heavy work).

The child (``python -m herald.jobprocess``) gets the job on stdin, loads the same plugins as
the worker, and reports progress, live messages and the result as JSON lines on a private
pipe; its stdout and stderr become the job's log. Cancelling sends SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import deque
from typing import Any

from herald.bus.base import JobRecord
from herald.jobs.executors.base import Executor, JobFailure, Sink
from herald.jobs.registry import JobDefinition

CHANNEL_ENV = "HERALD_JOB_CHANNEL_FD"


class LocalExecutor(Executor):
    name = "local"

    def __init__(
        self, capacity: int = 2, plugins: list[str] | None = None, cancel_grace_s: float = 5.0
    ) -> None:
        self.capacity = capacity
        self.plugins = list(plugins or [])
        self.cancel_grace_s = cancel_grace_s

    async def run(self, job: JobRecord, definition: JobDefinition, sink: Sink) -> dict[str, Any]:
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
        env[CHANNEL_ENV] = str(write_fd)
        env["PYTHONUNBUFFERED"] = "1"
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "herald.jobprocess",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        spec = {
            "job_id": job.id,
            "name": job.name,
            "attempt": job.attempt,
            "params": job.params,
            "plugins": self.plugins,
            "origin": definition.origin,
        }
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(json.dumps(spec).encode())
        await proc.stdin.drain()
        proc.stdin.close()

        tail: deque[str] = deque(maxlen=20)
        outcome: dict[str, Any] = {}

        async def pump(stream: asyncio.StreamReader, name: str) -> None:
            async for raw in stream:
                line = raw.decode(errors="replace").rstrip("\n")
                if name == "stderr":
                    tail.append(line)
                sink({"kind": "log", "stream": name, "line": line})

        async def channel() -> None:
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=1 << 20)
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0)
            )
            try:
                async for raw in reader:
                    try:
                        item = json.loads(raw)
                    except ValueError:
                        continue
                    if item.get("kind") in ("result", "error"):
                        outcome.update(item)
                    else:
                        sink(item)
            finally:
                transport.close()

        pumps = [
            asyncio.create_task(pump(proc.stdout, "stdout")),
            asyncio.create_task(pump(proc.stderr, "stderr")),
            asyncio.create_task(channel()),
        ]
        try:
            code = await proc.wait()
            await asyncio.gather(*pumps)
        except asyncio.CancelledError:
            await self._stop(proc)
            for p in pumps:
                p.cancel()
            raise
        if outcome.get("kind") == "result" and code == 0:
            return {"messages": outcome.get("messages", []), "value": outcome.get("value")}
        if outcome.get("kind") == "error":
            raise JobFailure(
                outcome.get("error") or "job failed",
                retryable=bool(outcome.get("retryable", True)),
            )
        raise JobFailure(_exit_reason(code, tail))

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            await asyncio.wait_for(proc.wait(), self.cancel_grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            await proc.wait()


def _exit_reason(code: int, tail: deque[str]) -> str:
    """Why a job process ended without reporting: the signal that killed it (a kill has no
    log line for a cause: the stderr tail stays in the job's log), or the exit code and the
    last error output."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        reason = f"job process was killed by {name}"
        if -code == signal.SIGKILL:
            reason += (
                " (often the kernel's out-of-memory killer: check `dmesg` and the job's memory, "
                "or whether an operator killed it); its output is in the job log"
            )
        return reason
    reason = f"job process exited with code {code}"
    return f"{reason}: {tail[-1]}" if tail else reason
