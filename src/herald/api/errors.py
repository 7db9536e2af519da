"""Error objects in the OpenAI style: ``{"error": {"message", "type", "code"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from herald.api.openapi import allowed_methods
from herald.errors import HeraldError

log = logging.getLogger("herald.api")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    503: "server_error",
}


def error_body(status: int, message: str, code: str, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {
        "message": message,
        "type": _TYPES.get(status, "server_error"),
        "code": code,
    }
    if details is not None:
        err["details"] = details
    return {"error": err}


def error_response(status: int, message: str, code: str, details: Any = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        error_body(status, message, code, details), status_code=status, headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(HeraldError)
    async def _herald(request: Request, exc: HeraldError) -> JSONResponse:
        herald = getattr(request.app.state, "herald", None)
        if exc.code == "path_not_allowed" and herald is not None:  # the file policy's refusals
            herald.metrics.messages_rejected.labels("path_not_allowed").inc()
        return error_response(exc.status, exc.message, exc.code, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            e = next(e for e in errors if e.get("type") == "json_invalid")
            msg = e.get("ctx", {}).get("error", "malformed JSON")
            return error_response(400, f"request body is not valid JSON: {msg}", "invalid_json")
        details = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in errors
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return error_response(422, f"{where}: {first['msg']}", "invalid_request", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        if exc.status_code == 405:  # every method of the path, not only the first route's
            allow = ", ".join(allowed_methods(request))
            resp = error_response(405, f"method {request.method} is not allowed; use {allow}", code)
            resp.headers["Allow"] = allow
            return resp
        resp = error_response(exc.status_code, str(exc.detail), code)
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, f"internal error: {type(exc).__name__}", "internal_error")
