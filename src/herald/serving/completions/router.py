"""``POST /v1/completions``."""

from __future__ import annotations

from fastapi import APIRouter

from herald.serving.completions.protocol import CompletionRequest
from herald.serving.completions.service import CompletionService
from herald.serving.http import PoolGetter, add_endpoint


def router(pool: PoolGetter) -> APIRouter:
    r = APIRouter(tags=["openai"])
    add_endpoint(
        r,
        "/completions",
        name="create_completion",
        summary="Create a text completion (OpenAI-compatible; echo + logprobs for lm-eval)",
        model=CompletionRequest,
        pool=pool,
        handle=lambda p, req: CompletionService(p).create(req),
    )
    return r
