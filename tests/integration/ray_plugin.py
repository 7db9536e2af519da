"""Jobs used only by the Ray executor tests (loaded as a plugin so job processes find them)."""

from __future__ import annotations

import os
import signal

import herald


@herald.job(name="ray_test.where", resources={"cpus": 1, "memory": "64MiB"})
def where(n: int, ctx: herald.JobContext) -> dict:
    """Report where the job ran: the Ray worker's node and the resources it was given."""
    ctx.progress(0.5, "half way", step=1.0)
    print(f"running {n} under Ray", flush=True)
    return {
        "n2": n * n,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "in_cluster": bool(os.environ.get("HERALD_JOBS__RAY__ADDRESS")),
        "home": os.environ.get("HERALD_HOME"),
    }


@herald.job(name="ray_test.kill_worker")
def kill_worker() -> None:
    """Kill the Ray worker process that runs this job (the job process's parent)."""
    os.kill(os.getppid(), signal.SIGKILL)
    signal.pause()
