"""HTTP glue shared by the endpoint routers: OpenAI error responses and the SSE response."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from herald.serving.errors import ServingError
from herald.serving.pool import ModelPool

PoolGetter = Callable[[], ModelPool]
T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before the response started."""


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run ``work`` (a whole non-streamed generation, or a stream's first token) and cancel
    it if the client disconnects meanwhile. After the body has been read, the next ASGI
    message can only be ``http.disconnect``."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(request.receive())
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        watch.cancel()
        with contextlib.suppress(BaseException):
            await watch
    if not task.cancelled():
        return task.result()
    raise ClientDisconnected


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def error_response(exc: ServingError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)


class EventStream(StreamingResponse):
    """``text/event-stream`` whose generator is always closed (so a generation is cancelled)
    when the client disconnects or the server stops."""

    def __init__(self, content: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        super().__init__(
            content, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def respond(result: BaseModel | AsyncIterator[bytes], headers: dict[str, str]) -> Any:
    if isinstance(result, BaseModel):
        return JSONResponse(result.model_dump(mode="json"), headers=headers)
    return EventStream(result, headers)


def request_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body that the route parses itself: the model's JSON
    Schema (its ``$defs`` are moved to the components by ``herald.api.openapi``)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


Handler = Callable[[ModelPool, Any], Awaitable[Any]]


def add_endpoint(
    r: APIRouter,
    path: str,
    *,
    name: str,
    summary: str,
    model: type[BaseModel],
    pool: PoolGetter,
    handle: Handler,
) -> None:
    """``POST path``: parse ``model`` from the body, run ``handle(pool, request)``, answer with
    JSON or SSE; OpenAI error objects on failure, 499 when the client went away (the work is
    cancelled). ``handle`` returns a result or ``(result, headers)``."""

    async def endpoint(request: Request) -> Response:
        from herald.serving.common import parse_request

        try:
            req = parse_request(model, await request.body())
            answer = await unless_disconnected(request, handle(pool(), req))
        except ServingError as exc:
            return error_response(exc)
        except ClientDisconnected:
            return Response(status_code=499)  # nobody is listening; the work was cancelled
        result, headers = answer if isinstance(answer, tuple) else (answer, {})
        return respond(result, headers)  # type: ignore[no-any-return]

    endpoint.__name__ = name
    r.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        name=name,
        summary=summary,
        openapi_extra=request_schema(model),
    )
