"""REST surface of the registry: models, versions, aliases, cards, data sets and runs.

Reads are synchronous routes (FastAPI runs them in its thread pool). Promote and archive publish
``model.promote`` / ``model.archive`` messages and answer 202 with the stored envelope — the
registry sensors apply them, so the change is part of the event log and its lineage. Requests
that would certainly fail (unknown version, archived version) are refused up front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from herald.api.paging import CURSOR_HELP, decode_cursor, page
from herald.api.params import VersionPath
from herald.bus.base import page_key
from herald.errors import Conflict
from herald.registry.models import ALIAS_RE, check_alias, check_name

if TYPE_CHECKING:
    from herald.bootstrap import Herald


class PromoteBody(BaseModel):
    alias: str = Field("champion", pattern=ALIAS_RE.pattern)
    reason: str = ""
    correlationid: str | None = None


class ArchiveBody(BaseModel):
    reason: str = ""
    correlationid: str | None = None


def _json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _ids(values: list[str] | None) -> list[str]:
    """``?ids=a,b&ids=c`` → ``["a", "b", "c"]``."""
    return [v for raw in values or [] for v in raw.split(",") if v]


def router(h: Herald) -> APIRouter:
    r = APIRouter()

    # models -------------------------------------------------------------------------------
    @r.get("/registry/models", tags=["registry"], summary="Registered models, by name")
    def list_models(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(description=CURSOR_HELP)] = None,
    ) -> dict[str, Any]:
        key = decode_cursor(cursor, "models", (str,), endpoint="GET /v1/registry/models")
        rows = h.registry.list_models(limit=limit + 1, after=key[0] if key else None)
        return page(rows, limit, "models", lambda m: (m["name"],), _jsonable)

    @r.get("/registry/resolve", tags=["registry"], summary="Resolve models:/name[@alias|/N]")
    def resolve(uri: str) -> dict[str, Any]:
        return _json(h.registry.resolve(uri))

    @r.get("/registry/models/{name}", tags=["registry"], summary="A model and its versions")
    def get_model(
        name: str,
        versions_limit: Annotated[
            int | None,
            Query(
                ge=0,
                le=1000,
                description="at most this many versions, newest first, and `versions_next_"
                "cursor` to continue with GET …/versions (0: none, page them from there; "
                "default: all versions)",
            ),
        ] = None,
    ) -> dict[str, Any]:
        check_name(name)
        if versions_limit is None:
            versions = h.registry.list_versions(name)
            more = None
        elif versions_limit == 0:
            versions, more = [], None
        else:
            rows = h.registry.list_versions(name, limit=versions_limit + 1)
            paged = page(rows, versions_limit, f"versions:{name}", lambda v: (v.version,), _json)
            versions, more = rows[:versions_limit], paged["next_cursor"]
        body = {
            "name": name,
            "uri": f"models:/{name}",
            "latest_version": h.registry.latest_version(name),
            "aliases": dict(sorted(h.registry.aliases(name).items())),
            "versions": [_json(v) for v in versions],
        }
        if versions_limit is not None:
            body["versions_next_cursor"] = more
        return body

    @r.get("/registry/models/{name}/versions", tags=["registry"], summary="Versions, newest first")
    def list_versions(
        name: str,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(description=CURSOR_HELP)] = None,
    ) -> dict[str, Any]:
        endpoint = "GET /v1/registry/models/{name}/versions"
        key = decode_cursor(cursor, f"versions:{name}", (int,), endpoint=endpoint)
        rows = h.registry.list_versions(
            check_name(name), limit=limit + 1, before=key[0] if key else None
        )
        return page(rows, limit, f"versions:{name}", lambda v: (v.version,), _json)

    @r.get("/registry/models/{name}/versions/{version}", tags=["registry"])
    def get_version(name: str, version: VersionPath) -> dict[str, Any]:
        return _json(h.registry.get_version(check_name(name), version))

    @r.get(
        "/registry/models/{name}/versions/{version}/card",
        tags=["registry"],
        response_class=PlainTextResponse,
        summary="Hugging Face model card (markdown with YAML front matter)",
    )
    def card(name: str, version: VersionPath) -> PlainTextResponse:
        text = h.registry.model_card(check_name(name), version)
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    @r.get("/registry/models/{name}/aliases/history", tags=["registry"])
    def alias_history(name: str, alias: str | None = None) -> dict[str, Any]:
        rows = h.registry.alias_history(check_name(name), alias)
        return {"data": [_jsonable(x) for x in rows]}

    @r.post(
        "/registry/models/{name}/versions/{version}/promote",
        tags=["registry"],
        status_code=202,
        summary="Publish model.promote (the registry sensor moves the alias)",
    )
    async def promote(name: str, version: VersionPath, body: PromoteBody) -> JSONResponse:
        check_alias(body.alias)
        mv = await _to_thread(h.registry.get_version, check_name(name), version)
        if mv.status == "archived":
            raise Conflict(f"{mv.uri} is archived; archived versions cannot take an alias")
        env = h.envelope(
            "model.promote",
            {"name": name, "version": version, "alias": body.alias, "reason": body.reason},
            subject=f"models/{name}",
            correlationid=body.correlationid,
        )
        [stored] = await h.publish(env)
        return JSONResponse(stored.model_dump(mode="json"), status_code=202)

    @r.post(
        "/registry/models/{name}/versions/{version}/archive",
        tags=["registry"],
        status_code=202,
        summary="Publish model.archive (the registry sensor archives the version)",
    )
    async def archive(
        name: str, version: VersionPath, body: ArchiveBody | None = None
    ) -> JSONResponse:
        body = body or ArchiveBody()
        await _to_thread(h.registry.get_version, check_name(name), version)
        env = h.envelope(
            "model.archive",
            {"name": name, "version": version, "reason": body.reason},
            subject=f"models/{name}",
            correlationid=body.correlationid,
        )
        [stored] = await h.publish(env)
        return JSONResponse(stored.model_dump(mode="json"), status_code=202)

    # data sets ----------------------------------------------------------------------------
    @r.get("/datasets", tags=["datasets"], summary="Latest version of every data set")
    def list_datasets() -> dict[str, Any]:
        return {"data": [_json(d) for d in h.registry.list_datasets()]}

    @r.get("/datasets/{name}", tags=["datasets"], summary="A data set and its versions")
    def get_dataset(name: str) -> dict[str, Any]:
        latest = h.registry.get_dataset(check_name(name, "data set"))
        versions = h.registry.list_datasets(name)
        return {
            "name": name,
            "latest": _json(latest),
            "versions": [_json(d) for d in versions],
        }

    @r.get("/datasets/{name}/versions/{version}", tags=["datasets"])
    def get_dataset_version(name: str, version: VersionPath) -> dict[str, Any]:
        return _json(h.registry.get_dataset(check_name(name, "data set"), version))

    # runs ---------------------------------------------------------------------------------
    @r.get("/runs", tags=["runs"], summary="Experiment runs, newest first")
    def list_runs(
        name: str | None = None,
        job_id: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(description=CURSOR_HELP)] = None,
    ) -> dict[str, Any]:
        key = decode_cursor(cursor, "runs", (int, str), endpoint="GET /v1/runs")
        runs = h.registry.list_runs(
            limit=limit + 1,
            before=(key[0], key[1]) if key else None,
            name=name,
            job_id=job_id,
            status=status,
        )
        return page(runs, limit, "runs", lambda x: page_key(x.created_at, x.id), _json)

    @r.get("/runs/compare", tags=["runs"], summary="Params diff and metrics side by side")
    def compare(ids: Annotated[list[str], Query()]) -> dict[str, Any]:
        return dict(_jsonable(h.registry.compare_runs(_ids(ids))))

    @r.get("/runs/{run_id}", tags=["runs"])
    def get_run(run_id: str) -> dict[str, Any]:
        return _json(h.registry.get_run(run_id))

    @r.get("/runs/{run_id}/metrics", tags=["runs"], summary="Metric series by key")
    def run_metrics(
        run_id: str, keys: Annotated[list[str] | None, Query()] = None
    ) -> dict[str, Any]:
        return {"run_id": run_id, "metrics": h.registry.run_metrics(run_id, _ids(keys) or None)}

    return r


async def _to_thread(fn: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


def _jsonable(value: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value)
