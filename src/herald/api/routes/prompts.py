"""The prompt registry over REST (``/v1/prompts``)::

GET    /v1/prompts                          latest version of every prompt
POST   /v1/prompts                          register a new version (201; prompt.registered)
GET    /v1/prompts/{name}                   all versions with their aliases
GET    /v1/prompts/{name}/versions/{n}      one version (also ?ref=prompts:/name@alias below)
POST   /v1/prompts/{name}/aliases           {alias, version} (prompt.promoted)
DELETE /v1/prompts/{name}/aliases/{alias}   remove an alias
POST   /v1/prompts/render                   {ref, variables} → {text}
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from herald.api.params import INT32_MAX, VersionPath
from herald.prompts import PromptPromoted, PromptRegistered, PromptStore
from herald.security.templates import TemplateLimits

if TYPE_CHECKING:
    from herald.bootstrap import Herald


class RegisterPrompt(BaseModel):
    name: str = Field(description="Prompt name (letters, digits, . _ -).")
    template: str = Field(description="Jinja2 template text.")
    variables: list[str] | None = Field(
        None, description="Declared variables; must match the ones the template uses."
    )
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class PromoteBody(BaseModel):
    alias: str = Field(description="Alias such as production or staging.")
    version: int = Field(ge=1, le=INT32_MAX)


class RenderBody(BaseModel):
    ref: str = Field(description="prompts:/name/3, prompts:/name@alias or name (latest).")
    variables: dict[str, Any] = Field(default_factory=dict)


def router(h: Herald) -> APIRouter:
    r = APIRouter(tags=["prompts"])

    def store() -> PromptStore:
        return h.services.prompts  # shared by every role of this Herald

    async def run(fn: Any, *args: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kw)

    @r.get("/prompts", summary="Prompts (latest version of each)")
    async def list_prompts() -> dict[str, Any]:
        return {"object": "list", "data": [p.to_dict() for p in await run(store().list)]}

    @r.post("/prompts", status_code=201, summary="Register a new prompt version")
    async def register(body: RegisterPrompt) -> JSONResponse:
        v = await run(
            store().register,
            body.name,
            body.template,
            variables=body.variables,
            description=body.description,
            metadata=body.metadata,
        )
        await h.emit(
            PromptRegistered(
                name=v.name,
                version=v.version,
                uri=v.uri,
                variables=v.variables,
                description=v.description,
            ),
            subject=f"prompts/{v.name}",
            source="herald/api",
        )
        return JSONResponse(v.to_dict(), status_code=201)

    @r.post("/prompts/render", summary="Render a prompt version with variables")
    async def render(body: RenderBody) -> dict[str, Any]:
        v = await run(store().get, body.ref)
        bounds = TemplateLimits.from_settings(h.settings.security.limits)
        text = await run(v.render, body.variables, limits=bounds)  # off the event loop
        return {"object": "prompt.rendering", "uri": v.uri, "text": text}

    @r.get("/prompts/{name}", summary="All versions of a prompt")
    async def versions(name: str) -> dict[str, Any]:
        return {"object": "list", "data": [v.to_dict() for v in await run(store().versions, name)]}

    @r.get("/prompts/{name}/versions/{version}", summary="One prompt version")
    async def version(name: str, version: VersionPath) -> dict[str, Any]:
        v = await run(store().get, f"prompts:/{name}/{version}")
        return v.to_dict()  # type: ignore[no-any-return]

    @r.post("/prompts/{name}/aliases", summary="Point an alias at a version")
    async def promote(name: str, body: PromoteBody) -> dict[str, Any]:
        v, previous = await run(store().promote, name, body.alias, body.version)
        await h.emit(
            PromptPromoted(
                name=name,
                version=v.version,
                alias=body.alias,
                uri=f"prompts:/{name}@{body.alias}",
                previous_version=previous,
            ),
            subject=f"prompts/{name}",
            source="herald/api",
        )
        return {**v.to_dict(), "previous_version": previous}

    @r.delete("/prompts/{name}/aliases/{alias}", summary="Remove an alias")
    async def delete_alias(name: str, alias: str) -> dict[str, Any]:
        await run(store().delete_alias, name, alias)
        return {"object": "prompt.alias", "name": name, "alias": alias, "deleted": True}

    return r
