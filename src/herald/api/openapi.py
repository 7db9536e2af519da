"""The OpenAPI document tells every status code a route can answer, and 405 tells ``Allow``.

FastAPI documents the success response of each route and a 422 in its own validation format.
Herald answers errors in one format (``{"error": {"message", "type", "code"}}``) from layers
FastAPI does not see: authentication (401, 403, 429 throttling), the body limit (413), the
JSON edge (400, 422), per-key concurrency (429), stores (404, 409, 503). :func:`install`
post-processes ``app.openapi()`` so that each operation lists the codes those layers can
produce, with the error schema, and declares the bearer-key security scheme (the probes are
public). The OpenAI routes document OpenAI error objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.routing import Match

__all__ = ["ERROR_SCHEMA", "allowed_methods", "install"]

PUBLIC = frozenset({"/healthz", "/readyz"})
BODY_METHODS = frozenset({"post", "put", "patch"})
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string", "description": "What went wrong and what to do."},
                "type": {"type": "string", "description": "invalid_request_error, ..."},
                "code": {"type": ["string", "null"], "description": "Stable error code."},
                "param": {"type": ["string", "null"], "description": "OpenAI routes: the field."},
                "details": {"description": "Validation details, when there are several."},
            },
        }
    },
}

_WHY = {
    400: "Malformed request (invalid JSON, a refused template, an invalid parameter)",
    401: "Missing or wrong API key",
    403: "The key's scope does not cover this route, or a policy refused the request",
    404: "Not found",
    405: "Method not allowed (see the Allow header)",
    409: "The resource's state does not allow this",
    413: "Request body or payload too large",
    422: "Invalid parameter or body (hostile values included: non-finite numbers, integers "
    "outside 64 bits, NUL, lone surrogates, nesting too deep)",
    429: "Too many requests, failed keys or concurrent requests for this key (Retry-After)",
    503: "A backend (database, model, executor) is unavailable",
}


def allowed_methods(request: Request) -> list[str]:
    """The methods of the resource at this request's path, for ``Allow``.

    The documented path template that matches most specifically wins (``/v1/prompts/render``
    over ``/v1/prompts/{name}``), so ``Allow`` agrees with the OpenAPI document; paths the
    document does not list fall back to trying each method against the app's routes."""
    path = request.scope["path"]
    best: tuple[int, list[str]] | None = None
    for template, methods in _templates(request.app):
        if template.fullmatch(path) and (best is None or template.groups < best[0]):
            best = (template.groups, methods)
    if best is not None:
        return best[1]
    routes = request.app.router.routes
    return [
        method
        for method in _HTTP_METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


def _templates(app: FastAPI) -> list[tuple[re.Pattern[str], list[str]]]:
    found: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "allow_index", None)
    if found is None:
        found = []
        for template, item in app.openapi().get("paths", {}).items():
            parts = re.split(r"(\{[^}]+\})", template)
            rx = "".join("([^/]+)" if p.startswith("{") else re.escape(p) for p in parts if p)
            methods = [m.upper() for m in METHODS if m in item]
            found.append((re.compile(rx), methods))
        app.state.allow_index = found
    return found


def _codes(path: str, method: str, op: dict[str, Any]) -> Iterable[int]:
    if path in PUBLIC:
        return (503,) if path == "/readyz" else ()
    # every guarded route: the key (401/403/429), a refused name or value (400/422), a named
    # resource that is missing or in the wrong state (404/409; HeraldError), a backend (503)
    codes = {400, 401, 403, 404, 409, 422, 429, 503}
    if method in BODY_METHODS or "requestBody" in op:
        codes.add(413)
    return sorted(codes)


# responses that are not JSON (FastAPI documents application/json for every route)
_MEDIA = {
    ("/metrics", "get"): ("text/plain", {"type": "string"}),
    ("/v1/messages/stream", "get"): ("text/event-stream", {"type": "string"}),
    ("/v1/registry/models/{name}/versions/{version}/card", "get"): (
        "text/markdown",
        {"type": "string"},
    ),
}
_STREAMING = {"/v1/chat/completions", "/v1/completions"}  # JSON, or SSE with stream=true


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """Add the error responses, the error schema and bearer security to ``spec`` (in place)."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The admin key (HERALD_API_KEY) or a client key.",
        }
    }
    spec["security"] = [{"bearer": []}]
    ref = {"$ref": "#/components/schemas/Error"}
    _hoist_defs(spec, schemas)
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            if path in PUBLIC:
                op["security"] = []
            responses = op.setdefault("responses", {})
            ok = next((c for c in ("200", "201", "202") if c in responses), None)
            if (path, method) in _MEDIA and ok is not None:
                media, schema = _MEDIA[path, method]
                responses[ok]["content"] = {media: {"schema": schema}}
            elif path in _STREAMING and ok is not None:
                responses[ok].setdefault("content", {})["text/event-stream"] = {
                    "schema": {"type": "string"}
                }
            for code in _codes(path, method, op):
                entry = responses.setdefault(str(code), {"description": _WHY[code]})
                entry["content"] = {"application/json": {"schema": ref}}
                if code == 422:
                    entry["description"] = _WHY[422]
                if code == 401:
                    entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
                if code == 429:
                    entry["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return spec


def _hoist_defs(spec: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Request bodies documented with a model's own JSON Schema (the OpenAI routes parse
    their bodies themselves) carry ``$defs``; OpenAPI keeps those in the components."""
    for item in spec.get("paths", {}).values():
        for method in METHODS:
            body = item.get(method, {}).get("requestBody", {})
            for media in body.get("content", {}).values():
                for name, sub in media.get("schema", {}).pop("$defs", {}).items():
                    schemas.setdefault(name, sub)


def install(app: FastAPI) -> None:
    """Serve the documented spec from ``app.openapi()`` (built once, like FastAPI's)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
