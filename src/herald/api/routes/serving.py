"""Mounts the OpenAI-compatible data plane (``/v1/models``, ``/v1/chat/completions``,
``/v1/completions``, ``/v1/embeddings``) on the runtime's model pool (``h.serving``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

from herald.serving.chat.router import router as chat_router
from herald.serving.completions.router import router as completions_router
from herald.serving.embeddings.router import router as embeddings_router
from herald.serving.models.router import router as models_router
from herald.serving.pool import ModelPool

if TYPE_CHECKING:
    from herald.bootstrap import Herald


def router(h: Herald) -> APIRouter:
    def pool() -> ModelPool:
        return h.serving

    r = APIRouter()
    for make in (models_router, chat_router, completions_router, embeddings_router):
        r.include_router(make(pool))
    return r
