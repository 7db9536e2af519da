"""``GET /v1/models`` and ``GET /v1/models/{model}``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from herald.security.callers import is_admin
from herald.serving.errors import ServingError
from herald.serving.http import PoolGetter, error_response
from herald.serving.models.service import ModelsService


def router(pool: PoolGetter) -> APIRouter:
    r = APIRouter(tags=["openai"])

    @r.get("/models", summary="List served models (OpenAI-compatible)")
    async def list_models(request: Request) -> Response:
        service = ModelsService(pool(), reveal_paths=is_admin(request.scope))
        return JSONResponse(service.list().model_dump(mode="json"))

    @r.get("/models/{model:path}", summary="One served model")
    async def get_model(model: str, request: Request) -> Response:
        try:
            card = await ModelsService(pool(), reveal_paths=is_admin(request.scope)).get(model)
        except ServingError as exc:
            return error_response(exc)
        return JSONResponse(card.model_dump(mode="json"))

    return r
