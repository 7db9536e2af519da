"""REST surface of the Omni-Evaluator: ``/v1/evaluations``.

``POST /v1/evaluations`` validates the suite and the target up front (so a bad request is a 4xx
at once) and publishes ``evaluation.requested``; the built-in sensor runs the job. For a
registry target the message joins the model version's flow (its lineage correlation id) unless
the caller gives one. Reads come from the results store.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from herald.api.paging import CURSOR_HELP, decode_cursor, page
from herald.api.params import Offset
from herald.errors import Conflict
from herald.security.secrets import NAME_PATTERN, refuse_env_field

if TYPE_CHECKING:
    from herald.bootstrap import Herald
    from herald.evaluation.store import EvaluationStore


class EvaluationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(min_length=1)
    suite: str = Field(min_length=1)
    model: str | None = None
    concurrency: int | None = Field(None, ge=1, le=256)
    limit: int | None = Field(None, ge=1)
    api_key_secret: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="operator-defined secret (security.secrets) sent as the endpoint's key",
    )
    options: dict[str, Any] = Field(default_factory=dict)
    correlationid: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_env_reference(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key_env" in data:
            refuse_env_field("api_key_env", data["api_key_env"] or "")
        return data


def _ids(values: list[str] | None) -> list[str]:
    return [v for raw in values or [] for v in raw.split(",") if v]


def router(h: Herald) -> APIRouter:
    r = APIRouter(tags=["evaluations"])

    def store() -> EvaluationStore:
        return h.services.evaluations  # the results every role of this Herald shares

    @r.get("/evaluations", summary="Evaluations, newest first")
    def list_evaluations(
        suite: str | None = None,
        target: str | None = None,
        model_version: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(description=CURSOR_HELP)] = None,
    ) -> dict[str, Any]:
        key = decode_cursor(cursor, "evaluations", (float, str), endpoint="GET /v1/evaluations")
        rows = store().list_evaluations(
            suite=suite,
            target=target,
            model_version=model_version,
            status=status,
            limit=limit + 1,
            before=(key[0], key[1]) if key else None,
        )
        return page(rows, limit, "evaluations", lambda e: (e["created_at"], e["id"]), dict)

    @r.get("/evaluations/compare", summary="Paired bootstrap of evaluations against the first")
    def compare(
        ids: Annotated[list[str] | None, Query()] = None, metric: list[str] | None = Query(None)
    ) -> dict[str, Any]:
        wanted = _ids(ids)
        if len(wanted) < 2:
            raise Conflict("compare needs ?ids=BASELINE,CANDIDATE[,…]")
        result: dict[str, Any] = store().compare(wanted, metrics=metric or None)
        return result

    @r.get("/evaluations/leaderboard", summary="Latest completed result per target on a suite")
    def leaderboard(suite: str, metric: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = store().leaderboard(suite, metric=metric)
        return result

    @r.get("/evaluations/{evaluation_id}", summary="One evaluation with its aggregates")
    def get_evaluation(evaluation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = store().get(evaluation_id)
        return result

    @r.get("/evaluations/{evaluation_id}/samples", summary="Per-sample records")
    def samples(
        evaluation_id: str,
        failed: bool | None = None,
        offset: Offset = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        rows = store().items(evaluation_id, failed=failed, offset=offset, limit=limit)
        return {"data": rows, "offset": offset, "limit": limit}

    @r.post(
        "/evaluations",
        status_code=202,
        summary="Publish evaluation.requested (the evaluation sensor runs the job)",
    )
    async def create(body: EvaluationBody) -> JSONResponse:
        from herald.evaluation.jobs import prepare
        from herald.messages.envelope import new_id

        suite, _spec, version, registry = await asyncio.to_thread(
            prepare,
            body.target,
            body.suite,
            h.services,
            model=body.model,
            limit=body.limit,
            api_key_secret=body.api_key_secret,
        )
        correlationid = body.correlationid
        subject = None
        if version is not None and registry is not None:
            name, _, number = version.removeprefix("models:/").rpartition("/")
            subject = f"models/{name}"
            if correlationid is None:
                mv = await asyncio.to_thread(registry.get_version, name, int(number))
                correlationid = mv.lineage.get("correlationid")
        evaluation_id = new_id().replace("-", "")
        data = body.model_dump(exclude={"correlationid"}, exclude_none=True)
        if suite.path:
            data["suite"] = suite.path  # the job resolves exactly this suite file
        data["evaluation_id"] = evaluation_id
        env = h.envelope("evaluation.requested", data, subject=subject, correlationid=correlationid)
        [stored] = await h.publish(env)
        return JSONResponse(
            {
                "evaluation_id": evaluation_id,
                "event": stored.model_dump(mode="json"),
                "model_version": version,
            },
            status_code=202,
        )

    return r
