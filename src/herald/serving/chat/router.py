"""``POST /v1/chat/completions``."""

from __future__ import annotations

from fastapi import APIRouter

from herald.serving.chat.protocol import ChatCompletionRequest
from herald.serving.chat.service import ChatService
from herald.serving.http import PoolGetter, add_endpoint


def router(pool: PoolGetter) -> APIRouter:
    r = APIRouter(tags=["openai"])
    add_endpoint(
        r,
        "/chat/completions",
        name="create_chat_completion",
        summary="Create a chat completion (OpenAI-compatible, SSE when stream=true)",
        model=ChatCompletionRequest,
        pool=pool,
        handle=lambda p, req: ChatService(p).create(req),
    )
    return r
