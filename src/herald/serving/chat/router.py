"""``POST /v1/chat/completions``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from herald.serving.chat.protocol import ChatCompletionRequest
from herald.serving.chat.service import ChatService
from herald.serving.common import parse_request
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
        "/chat/completions",
        summary="Create a chat completion (OpenAI-compatible, SSE when stream=true)",
        openapi_extra=request_schema(ChatCompletionRequest),
    )
    async def create_chat_completion(request: Request) -> Response:
        try:
            req = parse_request(ChatCompletionRequest, await request.body())
            result, headers = await unless_disconnected(request, ChatService(pool()).create(req))
        except ServingError as exc:
            return error_response(exc)
        except ClientDisconnected:
            return Response(status_code=499)  # nobody is listening; the work was cancelled
        return respond(result, headers)  # type: ignore[no-any-return]

    return r
