"""``POST /v1/completions``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from herald.serving.common import parse_request
from herald.serving.completions.protocol import CompletionRequest
from herald.serving.completions.service import CompletionService
from herald.serving.errors import ServingError
from herald.serving.http import (
    ClientDisconnected,
    PoolGetter,
    error_response,
    request_schema,
    respond,
    unless_disconnected,
)


def router(pool: PoolGetter) -> APIRouter:
    r = APIRouter(tags=["openai"])

    @r.post(
        "/completions",
        summary="Create a text completion (OpenAI-compatible; echo + logprobs for lm-eval)",
        openapi_extra=request_schema(CompletionRequest),
    )
    async def create_completion(request: Request) -> Response:
        try:
            req = parse_request(CompletionRequest, await request.body())
            result, headers = await unless_disconnected(
                request, CompletionService(pool()).create(req)
            )
        except ServingError as exc:
            return error_response(exc)
        except ClientDisconnected:
            return Response(status_code=499)  # nobody is listening; the work was cancelled
        return respond(result, headers)  # type: ignore[no-any-return]

    return r
