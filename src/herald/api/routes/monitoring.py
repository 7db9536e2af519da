"""REST surface of monitoring: ``/v1/feedback``, ``/v1/monitors``, ``/v1/approvals``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from herald.bus.base import EventQuery
from herald.errors import Conflict, NotFound
from herald.security.pii import PIIPolicy

if TYPE_CHECKING:
    from herald.bootstrap import Herald


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    response_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")
    thumbs: Literal["up", "down"] | None = None
    score: float | None = Field(None, ge=0.0, le=1.0)
    comment: str = Field("", max_length=4000)
    model: str | None = Field(None, max_length=200)
    user: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> FeedbackBody:
        if self.score is None and self.thumbs is None:
            raise ValueError("give 'thumbs' ('up' or 'down') or 'score' (0..1)")
        return self


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field("", max_length=200)
    comment: str = Field("", max_length=4000)


class EvaluateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[str] = Field(default_factory=list)
    inline_rules: list[dict[str, Any]] = Field(default_factory=list)
    at: float | None = None


def feedback_router(h: Herald) -> APIRouter:
    """``POST /v1/feedback`` alone: also on ``herald serve``, next to the responses it rates."""
    r = APIRouter(tags=["monitoring"])

    @r.post("/feedback", status_code=201, summary="Rate a served response (thumbs or score)")
    async def feedback(body: FeedbackBody) -> JSONResponse:
        from herald.monitoring.messages import FeedbackRecorded

        score = body.score if body.score is not None else (1.0 if body.thumbs == "up" else 0.0)
        pii = PIIPolicy.from_settings(h.settings)  # a comment is request text at rest
        comment = body.comment if pii.log_raw else pii.redact(body.comment)[0]
        row = await asyncio.to_thread(
            h.services.monitoring.add_feedback,
            body.response_id,
            score,
            thumbs=body.thumbs,
            comment=comment,
            model=body.model,
            user=body.user,
        )
        await h.emit(
            FeedbackRecorded(
                feedback_id=row["id"], response_id=body.response_id, score=score, model=body.model
            ),
            subject=f"responses/{body.response_id}",
        )
        return JSONResponse(row, status_code=201)

    return r


def router(h: Herald) -> APIRouter:
    from herald.monitoring.rules import load_rules

    r = APIRouter(tags=["monitoring"])
    r.include_router(feedback_router(h))

    @r.get("/monitors", summary="Monitoring rules and their latest outcomes")
    async def monitors() -> dict[str, Any]:
        rules = load_rules(h.settings.monitoring.rules_file)
        # the newest monitors.evaluated is the shared record: the run may have happened in a
        # worker or another api process (a process-local list showed only this one's runs)
        latest = await h.log.query(
            EventQuery(types=["monitors.evaluated"], limit=1, descending=True)
        )
        evaluated = latest[0] if latest else None
        at = evaluated.time.timestamp() if evaluated else None
        return {
            "enabled": h.settings.monitoring.enabled,
            "data": [rule.model_dump() | {"emits": rule.message_type} for rule in rules],
            "outcomes": [
                {**o, "time": at} for o in (evaluated.data.get("outcomes", []) if evaluated else [])
            ],
            "evaluated": None
            if evaluated is None
            else {
                "id": evaluated.id,
                "time": evaluated.time.isoformat(),
                "trigger": evaluated.data.get("trigger"),
                "truncated": evaluated.data.get("truncated", 0),
            },
        }

    @r.post("/monitors/evaluate", status_code=202, summary="Publish monitors.evaluate")
    async def evaluate(body: EvaluateBody | None = None) -> JSONResponse:
        body = body or EvaluateBody()
        if body.inline_rules:
            load_rules(body.inline_rules)  # refuse a bad rule now, not in the sensor
        env = h.envelope("monitors.evaluate", body.model_dump())
        [stored] = await h.publish(env)
        return JSONResponse({"event": stored.model_dump(mode="json")}, status_code=202)

    async def _decided(approval_id: str) -> bool:
        got = await h.log.query(
            EventQuery(types=["approval.granted", "approval.denied"], limit=10000)
        )
        return any(e.data.get("approval_id") == approval_id for e in got)

    @r.get("/approvals", summary="Pending approval requests")
    async def approvals() -> dict[str, Any]:
        req = await h.log.query(EventQuery(types=["approval.requested"], limit=1000))
        done = await h.log.query(
            EventQuery(types=["approval.granted", "approval.denied"], limit=10000)
        )
        decided = {e.data.get("approval_id") for e in done}
        return {
            "data": [e.model_dump(mode="json") for e in req if e.id not in decided],
        }

    async def _decide(approval_id: str, body: DecisionBody, granted: bool) -> JSONResponse:
        req = await h.log.get(approval_id)
        if req is None or req.type != "approval.requested":
            raise NotFound(f"no approval request {approval_id!r} (see GET /v1/approvals)")
        if await _decided(approval_id):
            raise Conflict(f"approval request {approval_id} was already decided")
        data: dict[str, Any] = {"approval_id": approval_id, "by": body.by, "comment": body.comment}
        if granted:
            data |= {"action_type": req.data["action_type"], "action": req.data["action"]}
        env = h.envelope(
            "approval.granted" if granted else "approval.denied",
            data,
            subject=req.subject,
            correlationid=req.correlationid,
            causationid=req.id,
        )
        [stored] = await h.publish(env)
        return JSONResponse({"event": stored.model_dump(mode="json")}, status_code=202)

    @r.post("/approvals/{approval_id}/grant", status_code=202, summary="Grant an approval")
    async def grant(approval_id: str, body: DecisionBody | None = None) -> JSONResponse:
        return await _decide(approval_id, body or DecisionBody(), True)

    @r.post("/approvals/{approval_id}/deny", status_code=202, summary="Deny an approval")
    async def deny(approval_id: str, body: DecisionBody | None = None) -> JSONResponse:
        return await _decide(approval_id, body or DecisionBody(), False)

    return r
