"""``POST /v1/embeddings``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from herald.serving.common import parse_request
from herald.serving.embeddings.protocol import EmbeddingRequest
from herald.serving.embeddings.service import EmbeddingService
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
        "/embeddings",
        summary="Create embeddings (float or base64)",
        openapi_extra=request_schema(EmbeddingRequest),
    )
    async def create_embeddings(request: Request) -> Response:
        try:
            req = parse_request(EmbeddingRequest, await request.body())
            result = await unless_disconnected(request, EmbeddingService(pool()).create(req))
        except ServingError as exc:
            return error_response(exc)
        except ClientDisconnected:
            return Response(status_code=499)  # nobody is listening; the work was cancelled
        return respond(result, {})  # type: ignore[no-any-return]

    return r
