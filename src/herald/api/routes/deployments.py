"""REST for deployments (``/v1/deployments``), batches (``/v1/batches``) and client API keys
(``/v1/keys``, admin only). Changes are published as messages (202): the deployment sensors
apply them, so REST, CLI and users' own sensors share one path."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from herald.bus.base import EventQuery
from herald.errors import NotFound
from herald.serving.batch.job import BATCH_JOB
from herald.serving.deployments.models import apply_weights, parse_deployment

if TYPE_CHECKING:
    from herald.bootstrap import Herald


class DeploymentBody(BaseModel):
    name: str
    targets: list[dict[str, Any]] = Field(min_length=1)
    guardrails: list[dict[str, Any]] | None = None
    follow_aliases: bool = True
    canary: dict[str, Any] | None = Field(None, description="canary rollback policy")
    rollout: dict[str, Any] | None = Field(
        None, description="rollout policy of alias moves ({'strategy': 'canary', ...})"
    )
    reason: str = ""


class TrafficBody(BaseModel):
    weights: dict[str, float] = Field(default_factory=dict)
    add: list[dict[str, Any]] = Field(default_factory=list, description="targets to add")
    reason: str = ""


class ReasonBody(BaseModel):
    reason: str = ""


class BatchBody(BaseModel):
    input_file_id: str = Field(description="artifact URI or key of the Batch JSONL")
    endpoint: str = "/v1/chat/completions"
    completion_window: str = "24h"
    metadata: dict[str, str] | None = None
    concurrency: int = Field(4, ge=1, le=64)


class KeyBody(BaseModel):
    name: str
    scopes: list[str] = Field(default_factory=lambda: ["inference"])
    rate_per_minute: float | None = None


def router(h: Herald) -> APIRouter:
    h.deployments.serving = True  # this process serves HTTP: it applies deployments
    r = APIRouter(tags=["deployments"])

    async def publish(type_: str, data: dict[str, Any], subject: str) -> dict[str, Any]:
        env = h.envelope(type_, data, subject=subject, source="herald/api")
        [stored] = await h.publish(env)
        return {"message_id": stored.id, "type": stored.type, "correlationid": stored.correlationid}

    def view(name: str) -> dict[str, Any]:
        dep = h.deployments.store.get(name)
        active = h.deployments.active.get(name)
        return {
            "name": dep.name,
            "object": "deployment",
            "revision": dep.revision,
            "status": dep.status,
            "error": dep.error,
            "reason": dep.reason,
            "targets": [t.model_dump() for t in dep.targets],
            "guardrails": dep.guardrails,
            "follow_aliases": dep.follow_aliases,
            "canary": dep.canary.model_dump(),
            "rollout": dep.rollout.model_dump(),
            "history": len(dep.history),
            "updated_at": dep.updated_at.isoformat(),
            "serving_revision": active.revision if active is not None else None,
            "live": h.deployments.describe_active(name),
        }

    @r.get("/deployments", summary="List deployments")
    async def list_deployments() -> dict[str, Any]:
        deps = await asyncio.to_thread(h.deployments.store.list)
        return {"object": "list", "data": [view(d.name) for d in deps]}

    @r.post("/deployments", status_code=202, summary="Create or replace a deployment")
    async def create_deployment(body: DeploymentBody) -> JSONResponse:
        data = body.model_dump(exclude_none=True)
        dep = parse_deployment(data)  # 422 early, naming the problem
        # the egress policy (403) and named secrets (422) of openai upstreams, at once
        await asyncio.to_thread(h.deployments.check_targets, dep.targets)
        out = await publish("deployment.requested", data, body.name)
        return JSONResponse({"deployment": body.name, **out}, status_code=202)

    @r.get("/deployments/{name}", summary="A deployment: desired state and live replicas")
    async def get_deployment(name: str) -> dict[str, Any]:
        return await asyncio.to_thread(view, name)

    @r.post("/deployments/{name}/traffic", status_code=202, summary="Change traffic weights")
    async def traffic(name: str, body: TrafficBody) -> JSONResponse:
        dep = await asyncio.to_thread(h.deployments.store.get, name)  # 404 if unknown
        targets = apply_weights(dep.targets, body.weights)  # 422 early, naming the problem
        if body.add:
            added = parse_deployment({"name": name, "targets": body.add}).targets
            parse_deployment({"name": name, "targets": [*targets, *added]})
            await asyncio.to_thread(h.deployments.check_targets, added)
        data = {"name": name, "weights": body.weights, "add": body.add, "reason": body.reason}
        return JSONResponse(await publish("deployment.traffic.changed", data, name), 202)

    @r.post("/deployments/{name}/rollback", status_code=202, summary="Roll back one revision")
    async def rollback(name: str, body: ReasonBody | None = Body(None)) -> JSONResponse:
        await asyncio.to_thread(h.deployments.store.get, name)
        data = {"name": name, "reason": body.reason if body else ""}
        return JSONResponse(await publish("deployment.rollback", data, name), 202)

    @r.delete("/deployments/{name}", status_code=202, summary="Delete a deployment")
    async def delete(name: str) -> JSONResponse:
        await asyncio.to_thread(h.deployments.store.get, name)
        return JSONResponse(await publish("deployment.delete", {"name": name}, name), 202)

    # batches -----------------------------------------------------------------------------------
    # A batch's state is read from its own flow through indexed columns: batch.requested by
    # subject (= batch id), then the newest job/batch events of its correlation id.
    def batch_object(
        batch_id: str, requested: Any, outcome: Any = None, progress: Any = None
    ) -> dict[str, Any]:
        req = requested.data
        status = "validating"
        counts = {"total": 0, "completed": 0, "failed": 0}
        out: dict[str, Any] = {}
        if progress is not None:
            status = "in_progress"
            m = progress.data.get("metrics") or {}
            if "total" in m:
                done, failed = int(m.get("done", 0)), int(m.get("failed", 0))
                counts = {"total": int(m["total"]), "completed": done - failed, "failed": failed}
        if outcome is not None and outcome.type == "batch.completed":
            d = outcome.data
            status = d["status"]
            counts = {"total": d["total"], "completed": d["completed"], "failed": d["failed"]}
            out = {"output_file_id": d.get("output_uri"), "errors": d.get("error")}
        elif outcome is not None:  # job.failed / job.cancelled
            status = "cancelled" if outcome.type == "job.cancelled" else "failed"
            out = {"errors": outcome.data.get("error") or outcome.data.get("reason")}
        return {
            "id": batch_id,
            "object": "batch",
            "endpoint": req["endpoint"],
            "input_file_id": req["input_uri"],
            "completion_window": "24h",
            "status": status,
            "created_at": int(requested.time.timestamp()),
            "request_counts": counts,
            "metadata": req.get("metadata") or {},
            **out,
        }

    async def newest(types: list[str], **where: Any) -> Any:
        """The newest event of ``types`` in an indexed slice (job events: the batch job's)."""
        q = EventQuery(types=types, limit=50, descending=True, **where)
        for e in await h.log.query(q):
            if not e.type.startswith("job.") or e.data.get("name") == BATCH_JOB:
                return e
        return None

    @r.post("/batches", summary="Create a batch (OpenAI Batch JSONL from the artifact store)")
    async def create_batch(body: BatchBody) -> dict[str, Any]:
        batch_id = "batch_" + uuid.uuid4().hex[:24]
        data = {
            "batch_id": batch_id,
            "input_uri": body.input_file_id,
            "endpoint": body.endpoint,
            "concurrency": body.concurrency,
            "metadata": body.metadata or {},
        }
        env = h.envelope("batch.requested", data, subject=batch_id, source="herald/api")
        [stored] = await h.publish(env)
        return batch_object(batch_id, stored, None)

    @r.get("/batches/{batch_id}", summary="A batch's status and output file")
    async def get_batch(batch_id: str) -> dict[str, Any]:
        requested = await newest(["batch.requested"], subject=batch_id)
        if requested is None or requested.data.get("batch_id") != batch_id:
            raise NotFound(
                f"no batch {batch_id!r} (batches are found by the subject of their "
                "batch.requested message: POST /v1/batches sets it)"
            )
        cid = requested.correlationid
        outcome = await newest(
            ["batch.completed", "job.failed", "job.cancelled"], correlationid=cid
        )
        progress = (
            None if outcome else await newest(["job.started", "job.progressed"], correlationid=cid)
        )
        return batch_object(batch_id, requested, outcome, progress)

    # keys ----------------------------------------------------------------------------------------
    @r.get("/keys", summary="List client API keys (admin)")
    async def list_keys() -> dict[str, Any]:
        keys = await asyncio.to_thread(h.keys.list, include_revoked=True)
        return {"object": "list", "data": [k.public() for k in keys]}

    @r.post("/keys", status_code=201, summary="Create a client API key (shown once)")
    async def create_key(body: KeyBody) -> dict[str, Any]:
        rec, secret = await asyncio.to_thread(
            h.keys.create, body.name, body.scopes, body.rate_per_minute
        )
        return {**rec.public(), "key": secret}

    @r.delete("/keys/{key_id}", summary="Revoke a client API key")
    async def revoke_key(key_id: str) -> dict[str, Any]:
        return (await asyncio.to_thread(h.keys.revoke, key_id)).public()

    return r
