"""Plugin of bench/job_latency.py: a message, a sensor that requests a job, a job that reports
when its body started (wall clock, comparable across processes)."""

from __future__ import annotations

import time

import herald


class Work(herald.Message, type="bench.work"):
    i: int
    executor: str


@herald.job(name="bench.stamp", max_attempts=1)
def stamp(i: int) -> dict[str, float]:
    return {"i": i, "started": time.time()}


@herald.sensor(on=Work, name="bench.dispatch")
def dispatch(msg: Work, ctx: herald.SensorContext) -> None:
    ctx.run_job("bench.stamp", {"i": msg.i}, executor=msg.executor)
