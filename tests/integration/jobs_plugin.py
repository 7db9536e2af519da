"""Jobs used by the job tests (loaded as a plugin so `local` subprocesses find them too)."""

from __future__ import annotations

import os
import time

import herald


class Built(herald.Message, type="test.built"):
    value: int


class BuildRequested(herald.Message, type="test.build.requested"):
    n: int
    executor: str = "local"


@herald.job(name="square")
def square(n: int, ctx: herald.JobContext) -> Built:
    """Square a number, reporting progress and a log line."""
    ctx.progress(0.5, "half way", step=1.0)
    print(f"squaring {n}", flush=True)
    ctx.log("done")
    return Built(value=n * n)


@herald.job(name="reject")
def reject(name: str) -> None:
    """Fails the way a bad request fails: retrying cannot help."""
    from herald.errors import NotFound

    raise NotFound(f"no data set named {name!r}")


@herald.job(name="explode")
def explode(reason: str) -> None:
    raise ValueError(reason)


@herald.job(name="sleepy")
def sleepy(seconds: float, marker: str = "") -> dict:
    if marker:
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return {"slept": seconds}


@herald.job(name="hard_exit")
def hard_exit() -> None:
    os._exit(3)


@herald.job(name="killed")
def killed() -> None:
    """Dies the way the out-of-memory killer ends a job, after an unrelated warning line."""
    import signal
    import sys

    print("UserWarning: something unrelated to the kill", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


@herald.job(name="whereis_herald")
def whereis_herald() -> dict:
    """The URL a job reaches the Herald that runs it at."""
    return {"url": os.environ.get("HERALD_URL")}


@herald.sensor(on=BuildRequested, name="builder")
def builder(msg: BuildRequested, ctx: herald.SensorContext) -> None:
    ctx.run_job("square", {"n": msg.n}, executor=msg.executor)


@herald.job(name="services.probe")
def services_probe(ctx: herald.JobContext) -> dict[str, object]:
    """What the job sees through ctx.services (tests/integration/test_job_services.py)."""
    settings = ctx.services.settings
    return {
        "concurrency": settings.evaluation.concurrency,
        "home": str(settings.home),
        "models": [m["name"] for m in ctx.services.registry.list_models()],
    }
