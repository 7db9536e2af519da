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

import herald
from herald.api import errors
from herald.api.app import _probes
from herald.api.security import AuthMiddleware
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

    app = FastAPI(
        title="Herald worker",
        version=herald.__version__,
        description="Probes and metrics of a Herald worker (herald worker --port).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(
        AuthMiddleware,
        api_key=api_key,
        max_body_bytes=h.settings.api.max_body_bytes,
        keys=getattr(h, "keys", None),
    )
    errors.install(app)
    app.state.herald = h
    app.include_router(_probes(h))
    return app
