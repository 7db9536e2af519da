"""Entry point of a job process: ``python -m herald.jobprocess`` (job on stdin), what the
``local``, ``ray`` and ``kubernetes`` executors run. It is the composition root of a job process
(as :mod:`herald.bootstrap` is of a server): it loads the plugins and gives the job its services,
built from this process's settings on first use."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
import threading
import traceback
from typing import Any

from herald.jobs.executors.inline import encode_result
from herald.jobs.executors.local import CHANNEL_ENV


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the worker dies (no orphaned jobs)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
        if os.getppid() == 1:  # the worker died before prctl took effect
            os._exit(1)


def main() -> int:
    _die_with_parent()
    fd = int(os.environ[CHANNEL_ENV])
    channel = os.fdopen(fd, "w", buffering=1)
    lock = threading.Lock()

    def send(item: dict[str, Any]) -> None:
        with lock:
            channel.write(json.dumps(item, default=str) + "\n")
            channel.flush()

    try:
        spec = json.loads(sys.stdin.read())
        from herald.jobs.context import JobContext
        from herald.jobs.registry import default_jobs
        from herald.plugins import load_plugins
        from herald.services import Services

        load_plugins(spec.get("plugins", []))
        definition = default_jobs.get(spec["name"])
        ctx = JobContext(
            spec["job_id"],
            spec["name"],
            spec["attempt"],
            spec["params"],
            send,
            services_factory=Services.from_environment,
        )
        kwargs = dict(spec["params"])
        if definition.ctx_param:
            kwargs[definition.ctx_param] = ctx
        if inspect.iscoroutinefunction(definition.fn):
            result = asyncio.run(definition.fn(**kwargs))
        else:
            result = definition.fn(**kwargs)
        encoded = encode_result(result)
        json.dumps(encoded)  # the result must be JSON: fail here with a clear error otherwise
        send({"kind": "result", **encoded})
        return 0
    except BaseException as exc:
        traceback.print_exc()
        from herald.jobs.executors.base import is_retryable

        send(
            {
                "kind": "error",
                "error": f"{type(exc).__name__}: {exc}",
                "retryable": is_retryable(exc),
            }
        )
        return 1
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main())
