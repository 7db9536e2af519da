"""The ASGI app of ``herald serve``: a model server without sensors, job workers or dashboard.

It mounts the probes (``/healthz``, ``/readyz``, ``/metrics``), the OpenAI-compatible data plane
(``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``), the
deployments resource and ``/v1/feedback`` (ratings of the responses it served), behind the same authentication as ``herald api``. Several of these
processes can run behind one Service; ``herald worker`` processes run the sensors and jobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from herald.api.app import role_app
from herald.api.routes import deployments, monitoring, serving
from herald.bootstrap import Herald


def create_serving_app(h: Herald, api_key: str) -> FastAPI:
    """The model-server app; its lifespan starts ``h`` without sensors and job workers."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await h.start(sensors=False, workers=False)
        h.deployments.ensure_started()  # apply the desired state the workers write, from now on
        try:
            yield
        finally:
            await h.stop()

    app = role_app(
        h,
        api_key,
        title="Herald model server",
        description="Herald's OpenAI-compatible data plane and deployments (herald serve).",
        lifespan=lifespan,
    )
    app.include_router(serving.router(h), prefix="/v1")
    app.include_router(deployments.router(h), prefix="/v1")
    app.include_router(monitoring.feedback_router(h), prefix="/v1")  # rate what this serves
    return app
