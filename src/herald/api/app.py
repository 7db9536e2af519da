"""The control-plane API (FastAPI): messages, flows, catalog, sensors, jobs, dead letters."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

import herald
from herald.api import errors
from herald.api import openapi as openapi_doc
from herald.api.flowgraph import collapse_progress
from herald.api.paging import CURSOR_HELP, decode_cursor, page
from herald.api.params import INT64_MAX, After
from herald.api.routes import capability_routers
from herald.api.schemas import (
    JobSubmit,
    PublishRequest,
    dead_letter_json,
    job_json,
    log_json,
)
from herald.api.security import AuthMiddleware
from herald.bootstrap import Herald
from herald.bus.base import EventQuery, page_key
from herald.bus.memory import matches
from herald.dashboard import Sessions
from herald.dashboard import mount as mount_dashboard
from herald.errors import Conflict, NotFound
from herald.messages.envelope import Envelope
from herald.security import json_edge
from herald.security.throttle import FailureThrottle
from herald.serving import limits


def _env_json(e: Envelope) -> dict[str, Any]:
    return e.model_dump(mode="json")


def create_app(
    h: Herald,
    api_key: str,
    *,
    manage_lifecycle: bool = True,
    sensors: bool = True,
    workers: bool = True,
) -> FastAPI:
    """The ASGI app; with ``manage_lifecycle`` its lifespan starts and stops ``h``
    (running the sensor runner and job worker in this process unless turned off)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await h.start(sensors=sensors, workers=workers)
        try:
            yield
        finally:
            if manage_lifecycle:
                await h.stop()

    app = FastAPI(
        title="Herald",
        version=herald.__version__,
        description="Event-driven LLMOps: typed messages, sensors and jobs.",
        lifespan=lifespan,
    )
    auth = h.settings.security.auth
    sessions = Sessions(h.sessions, api_key, ttl_s=auth.session_ttl_s)  # server-side, shared
    throttle = FailureThrottle.from_settings(auth, h.metrics.registry)  # wrong keys, logins
    _json_edge(app, h)  # innermost: hostile JSON values, NUL in the URL
    _limits(app, h, api_key)  # after authentication: body size, per-key concurrency
    app.add_middleware(
        AuthMiddleware,
        api_key=api_key,
        max_body_bytes=h.settings.api.max_body_bytes,
        keys=getattr(h, "keys", None),
        sessions=sessions,
        throttle=throttle,
        home=h.settings.home,
    )
    errors.install(app)
    openapi_doc.install(app)  # every status code documented, bearer security
    app.state.herald = h
    app.include_router(_probes(h))
    app.include_router(_messages(h), prefix="/v1")
    app.include_router(_control(h), prefix="/v1")
    for router in capability_routers(h):
        app.include_router(router, prefix="/v1")
    mount_dashboard(app, h, sessions, api_key, throttle)
    return app


def role_app(
    h: Herald,
    api_key: str,
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    openapi: bool = True,
) -> FastAPI:
    """The base of a role's app (``herald serve``, ``herald worker --port``): authentication,
    Herald's error format and the probes; the role adds its routers."""
    hidden: dict[str, Any] = {} if openapi else {"docs_url": None, "redoc_url": None}
    if not openapi:
        hidden["openapi_url"] = None
    app = FastAPI(
        title=title,
        version=herald.__version__,
        description=description,
        lifespan=lifespan,
        **hidden,
    )
    _json_edge(app, h)  # innermost: hostile JSON values, NUL in the URL
    _limits(app, h, api_key)  # after authentication: body size, per-key concurrency
    app.add_middleware(
        AuthMiddleware,
        api_key=api_key,
        max_body_bytes=h.settings.api.max_body_bytes,
        keys=getattr(h, "keys", None),
        throttle=FailureThrottle.from_settings(h.settings.security.auth, h.metrics.registry),
        home=h.settings.home,
    )
    errors.install(app)
    openapi_doc.install(app)  # every status code documented, bearer security
    app.state.herald = h
    app.include_router(_probes(h))
    return app


def _json_edge(app: FastAPI, h: Herald) -> None:
    """Non-finite numbers, out-of-range integers, lone surrogates, NUL and deep nesting are
    refused before any route parses a body (herald.security.json_edge)."""
    json_edge.install(
        app,
        max_depth=h.settings.security.limits.max_json_depth,
        max_body_bytes=h.settings.api.max_body_bytes,
        registry=h.metrics.registry,
    )


def _limits(app: FastAPI, h: Herald, api_key: str) -> None:
    """Body size (chunked too) and per-key concurrency; added before AuthMiddleware so that
    they run after it."""
    limits.install(
        app,
        max_body_bytes=h.settings.api.max_body_bytes,
        limits=h.settings.security.limits,
        admin_key=api_key,
        registry=h.metrics.registry,
    )


def _probes(h: Herald) -> APIRouter:
    r = APIRouter(tags=["health"])

    @r.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": herald.__version__}

    @r.get("/readyz")
    async def readyz() -> Response:
        try:
            head = await asyncio.wait_for(h.log.head(), 5)
        except Exception as exc:
            return errors.error_response(503, f"event log unavailable: {exc}", "not_ready")
        return JSONResponse({"status": "ready", "head": head})

    @r.get("/metrics")
    async def metrics() -> Response:
        if h.runner is not None:
            for s in h.runner.status():
                h.metrics.sensor_lag.labels(s["name"]).set(s["lag"])
        return Response(h.metrics.render(), media_type="text/plain; version=0.0.4")

    return r


def _messages(h: Herald) -> APIRouter:
    r = APIRouter(tags=["messages"])

    async def publish_one(req: PublishRequest) -> tuple[Envelope, bool]:
        env = h.envelope(
            req.type,
            req.data,
            subject=req.subject,
            correlationid=req.correlationid,
            causationid=req.causationid,
            source=req.source or "herald/api",
            id=req.id,
        )
        try:
            [stored] = await h.publish(env)
            return stored, True
        except Conflict:
            existing = await h.log.get(env.id)
            if existing is None or existing.type != env.type or existing.data != env.data:
                raise Conflict(f"a different message with id {env.id!r} already exists") from None
            return existing, False  # idempotent retry of the same publish

    @r.post("/messages", status_code=202, summary="Publish a message (or a JSON array of them)")
    async def publish(
        body: Annotated[PublishRequest | list[PublishRequest], Body()],
    ) -> Response:
        if isinstance(body, list):
            if not body:
                return errors.error_response(422, "empty message list", "invalid_request")
            envs = [
                h.envelope(
                    b.type,
                    b.data,
                    subject=b.subject,
                    correlationid=b.correlationid,
                    causationid=b.causationid,
                    source=b.source or "herald/api",
                    id=b.id,
                )
                for b in body
            ]
            stored = await h.publish(*envs)
            return JSONResponse({"data": [_env_json(e) for e in stored]}, status_code=202)
        env, created = await publish_one(body)
        return JSONResponse(
            _env_json(env),
            status_code=202 if created else 200,
            headers={"Location": f"/v1/messages/{env.id}"},
        )

    @r.get("/messages", summary="Query messages")
    async def list_messages(
        type: Annotated[list[str] | None, Query()] = None,
        subject: str | None = None,
        correlationid: str | None = None,
        causationid: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: After = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    ) -> dict[str, Any]:
        types = [t for item in type or [] for t in item.split(",") if t]
        q = EventQuery(
            types=types or None,
            subject=subject,
            correlationid=correlationid,
            causationid=causationid,
            since=since,
            until=until,
            after=after,
            limit=limit,
            descending=order == "desc",
        )
        head = await h.log.head()  # before the query: following from it misses nothing
        events = await h.log.query(q)
        last = events[-1].seq if events and order == "asc" else None
        return {"data": [_env_json(e) for e in events], "next_after": last, "head": head}

    @r.get("/messages/stream", summary="Follow messages as Server-Sent Events")
    async def stream(
        request: Request,
        type: Annotated[list[str] | None, Query()] = None,
        subject: str | None = None,
        correlationid: str | None = None,
        after: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> EventSourceResponse:
        types = [t for item in type or [] for t in item.split(",") if t]
        q = EventQuery(types=types or None, subject=subject, correlationid=correlationid)
        if after is None:
            after = (
                int(last_event_id)
                if last_event_id and last_event_id.isdigit() and len(last_event_id) <= 18
                else await h.log.head()
            )

        async def gen() -> AsyncIterator[dict[str, Any]]:
            cursor = after
            while not await request.is_disconnected():
                batch = await h.log.read(cursor, 500)
                if not batch:
                    await h.log.wait(cursor, 1.0)
                    continue
                for e in batch:
                    cursor = e.seq or cursor
                    if matches(e, q):
                        yield {"id": str(e.seq), "data": json.dumps(_env_json(e))}

        return EventSourceResponse(gen(), ping=15)

    @r.get("/messages/{event_id}", summary="One message by id")
    async def get_message(event_id: str) -> dict[str, Any]:
        e = await h.log.get(event_id)
        if e is None:
            raise NotFound(f"no message with id {event_id!r}")
        return _env_json(e)

    @r.get("/flows/{correlationid}", summary="The causal graph of a flow")
    async def flow(
        correlationid: str,
        progress: Annotated[
            Literal["all", "collapsed"],
            Query(
                description="all: one node per message; collapsed: one node per job for the "
                "*.progressed messages it reported, with their count and the last progress"
            ),
        ] = "all",
    ) -> dict[str, Any]:
        graph = await h.flow(correlationid)
        if not graph["nodes"]:
            raise NotFound(f"no messages with correlationid {correlationid!r}")
        return collapse_progress(graph) if progress == "collapsed" else graph

    @r.get("/catalog", summary="Message types with their JSON Schemas")
    async def catalog() -> dict[str, Any]:
        return h.catalog.to_json()

    @r.get("/catalog/asyncapi.json", summary="The catalog as an AsyncAPI 3 document")
    async def asyncapi() -> dict[str, Any]:
        return h.catalog.asyncapi(version=herald.__version__)

    @r.get("/catalog/{type_name}", summary="One message type")
    async def catalog_type(type_name: str) -> dict[str, Any]:
        return h.catalog.describe(type_name)

    return r


def _control(h: Herald) -> APIRouter:
    r = APIRouter()

    @r.get("/sensors", tags=["sensors"])
    async def sensors() -> dict[str, Any]:
        if h.runner is not None:
            return {"data": h.runner.status()}
        states = {s.name: s for s in await h.log.sensors()}
        return {
            "data": [
                {
                    **spec.describe(),
                    "enabled": states[spec.name].enabled if spec.name in states else True,
                    "cursor": states[spec.name].cursor if spec.name in states else None,
                }
                for spec in h.sensor_registry.all()
            ]
        }

    async def toggle(name: str, enabled: bool) -> dict[str, Any]:
        if h.runner is not None:
            return await h.runner.set_enabled(name, enabled)
        s = await h.log.set_sensor_enabled(name, enabled)
        return {"name": s.name, "enabled": s.enabled}

    @r.post("/sensors/{name}/enable", tags=["sensors"])
    async def enable(name: str) -> dict[str, Any]:
        return await toggle(name, True)

    @r.post("/sensors/{name}/disable", tags=["sensors"])
    async def disable(name: str) -> dict[str, Any]:
        return await toggle(name, False)

    @r.get("/jobs", tags=["jobs"])
    async def jobs(
        status: Annotated[
            str | None, Query(pattern="^(queued|running|succeeded|failed|cancelled)$")
        ] = None,
        name: str | None = None,
        correlationid: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(description=CURSOR_HELP)] = None,
    ) -> dict[str, Any]:
        before = decode_cursor(cursor, "jobs", (int, str), endpoint="GET /v1/jobs")
        found = await h.log.jobs(
            status=status,
            name=name,
            correlationid=correlationid,
            limit=limit + 1,
            before=(before[0], before[1]) if before else None,
        )
        return page(found, limit, "jobs", lambda j: page_key(j.created_at, j.id), job_json)

    @r.post("/jobs", tags=["jobs"], status_code=202)
    async def submit(body: JobSubmit) -> dict[str, Any]:
        return job_json(await h.submit_job(body.name, body.params, executor=body.executor))

    @r.get("/jobs/definitions", tags=["jobs"])
    async def definitions() -> dict[str, Any]:
        return {"data": [d.describe() for d in h.jobs.all()]}

    async def _job(job_id: str) -> Any:
        j = await h.log.get_job(job_id)
        if j is None:
            raise NotFound(f"no job {job_id!r}")
        return j

    @r.get("/jobs/{job_id}", tags=["jobs"])
    async def job(job_id: str) -> dict[str, Any]:
        return job_json(await _job(job_id))

    @r.get("/jobs/{job_id}/logs", tags=["jobs"])
    async def logs(
        job_id: str,
        after: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    ) -> dict[str, Any]:
        lines = await h.log.logs(job_id, after, limit)
        return {"data": [log_json(x) for x in lines]}

    @r.post("/jobs/{job_id}/cancel", tags=["jobs"])
    async def cancel(job_id: str) -> dict[str, Any]:
        j = await h.log.cancel_job(job_id)
        if h.worker is not None:
            h.worker.poke()
        return job_json(j)

    @r.post("/jobs/{job_id}/retry", tags=["jobs"])
    async def retry(job_id: str) -> dict[str, Any]:
        j = await h.log.retry_job(job_id)
        if h.worker is not None:
            h.worker.poke()
        return job_json(j)

    @r.get("/dead-letters", tags=["dead letters"])
    async def dead_letters(
        sensor: str | None = None,
        status: Annotated[str | None, Query(pattern="^(dead|replay_requested|replayed)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(description=CURSOR_HELP)] = None,
    ) -> dict[str, Any]:
        before = decode_cursor(cursor, "dead-letters", (int, str), endpoint="GET /v1/dead-letters")
        found = await h.log.dead_letters(
            sensor, status, limit=limit + 1, before=(before[0], before[1]) if before else None
        )
        return page(
            found, limit, "dead-letters", lambda d: page_key(d.created_at, d.id), dead_letter_json
        )

    @r.post("/dead-letters/{dead_letter_id}/replay", tags=["dead letters"], status_code=202)
    async def replay(dead_letter_id: str) -> dict[str, Any]:
        d = await h.log.request_replay(dead_letter_id)
        if h.runner is not None:
            h.runner.poke()
        return dead_letter_json(d)

    return r
