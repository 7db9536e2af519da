"""``POST /v1/embeddings``."""

from __future__ import annotations

from fastapi import APIRouter

from herald.serving.embeddings.protocol import EmbeddingRequest
from herald.serving.embeddings.service import EmbeddingService
from herald.serving.http import PoolGetter, add_endpoint


def router(pool: PoolGetter) -> APIRouter:
    r = APIRouter(tags=["openai"])
    add_endpoint(
        r,
        "/embeddings",
        name="create_embeddings",
        summary="Create embeddings (float or base64)",
        model=EmbeddingRequest,
        pool=pool,
        handle=lambda p, req: EmbeddingService(p).create(req),
    )
    return r
