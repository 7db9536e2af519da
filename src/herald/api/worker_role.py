"""The ASGI app of ``herald worker --port N``: the worker's probes and metrics, nothing else.

A worker runs sensors and jobs; with a port it also answers ``/healthz`` (the process is up),
``/readyz`` (the event log answers) and ``/metrics`` (Prometheus text: sensor lag, jobs, job
durations — behind the API key like the API's), so Kubernetes can probe it and Prometheus can
scrape every worker. It takes no messages and serves no dashboard: emitting stays the API's job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from herald.api.app import role_app
from herald.bootstrap import Herald


def create_worker_app(h: Herald, api_key: str) -> FastAPI:
    """The worker's probe app; its lifespan starts ``h`` with sensors and job workers."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await h.start(sensors=True, workers=True)
        try:
            yield
        finally:
            await h.stop()

    return role_app(
        h,
        api_key,
        title="Herald worker",
        description="Probes and metrics of a Herald worker (herald worker --port).",
        lifespan=lifespan,
        openapi=False,
    )
