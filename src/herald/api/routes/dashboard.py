"""Small read APIs the dashboard needs and nothing else offers.

``GET /v1/dashboard/serving`` — serving charts from the request log
(``$HERALD_HOME/serving/requests``, or the shared ``herald_requests`` table on PostgreSQL): per
model, time buckets of request count, errors, latency p50/p95, time to first token, generated
tokens per second and estimated cost, plus totals.

``GET /v1/dashboard/alerts`` — the newest alert-like messages (drift, quality, SLO, budget,
skipped retrains, rollbacks, guardrail triggers, approval requests), newest first.

``GET /v1/dashboard/suites`` — evaluation suites found by name (``$HERALD_HOME/evaluations/suites``
then ``evaluation.suite_paths``), for the registry's "Evaluate" action.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query

from herald.bus.base import EventQuery
from herald.serving.requestlog import RequestLogReader, read_files

if TYPE_CHECKING:
    from herald.bootstrap import Herald

ALERT_TYPES: tuple[str, ...] = (
    "drift.detected",
    "quality.degraded",
    "slo.breached",
    "budget.exceeded",
    "retrain.skipped",
    "deployment.rolledback",
    "deployment.failed",
    "guardrail.triggered",
    "approval.requested",
)
MAX_RECORDS = 200_000  # request-log lines read per call at most (newest files first)


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    i = (len(xs) - 1) * q
    lo = int(i)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def _summary(recs: list[dict[str, Any]]) -> dict[str, Any]:
    lat = [float(r["latency_s"]) for r in recs if r.get("latency_s") is not None]
    ttft = [float(r["ttft_s"]) for r in recs if r.get("ttft_s") is not None]
    gen_tokens = sum(int(r.get("completion_tokens") or 0) for r in recs)
    gen_time = sum(
        max(float(r.get("latency_s") or 0) - float(r.get("ttft_s") or 0), 0.0)
        for r in recs
        if r.get("completion_tokens")
    )
    costs = [float(r["cost_usd"]) for r in recs if r.get("cost_usd") is not None]
    return {
        "requests": len(recs),
        "errors": sum(1 for r in recs if int(r.get("status") or 200) >= 400),
        "latency_p50_s": _pct(lat, 0.5),
        "latency_p95_s": _pct(lat, 0.95),
        "ttft_p50_s": _pct(ttft, 0.5),
        "tokens_per_s": gen_tokens / gen_time if gen_time > 0 else None,
        "completion_tokens": gen_tokens,
        "cost_usd": round(sum(costs), 8) if costs else None,
    }


def serving_metrics(
    source: Path | RequestLogReader,
    *,
    minutes: float,
    buckets: int,
    model: str | None,
    now: float | None = None,
) -> dict[str, Any]:
    """Per-model totals and time buckets over the last ``minutes`` of the request log
    (``source``: the files' folder, or a reader such as the shared ``herald_requests`` table)."""
    until = time.time() if now is None else now
    since = until - minutes * 60
    width = (until - since) / buckets
    by_model: dict[str, list[dict[str, Any]]] = {}
    if isinstance(source, Path):
        found = read_files(source, since=since, model=model)
    else:
        found = source.read(since=since, model=model)
    for n, rec in enumerate(found):
        if n >= MAX_RECORDS:
            break
        name = str(rec.get("model") or "?")
        if model is None or name == model:
            by_model.setdefault(name, []).append(rec)
    out: dict[str, Any] = {}
    for name, recs in sorted(by_model.items()):
        slots: list[list[dict[str, Any]]] = [[] for _ in range(buckets)]
        for r in recs:
            slots[min(int((float(r["time"]) - since) / width), buckets - 1)].append(r)
        versions = sorted({str(r.get("version") or "") for r in recs} - {""})
        out[name] = {
            **_summary(recs),
            "versions": versions,
            "series": [
                {"t": round(since + i * width, 3), **_summary(s)} for i, s in enumerate(slots) if s
            ],
        }
    return {"since": since, "until": until, "bucket_s": width, "models": out}


def router(h: Herald) -> APIRouter:
    r = APIRouter(tags=["dashboard"])

    @r.get("/dashboard/serving", summary="Serving charts from the request log, per model")
    async def serving(
        minutes: Annotated[float, Query(gt=0, le=7 * 24 * 60)] = 60,
        buckets: Annotated[int, Query(ge=1, le=500)] = 30,
        model: str | None = None,
    ) -> dict[str, Any]:
        return await asyncio.to_thread(
            serving_metrics,
            h.services.request_log,
            minutes=minutes,
            buckets=buckets,
            model=model,
        )

    @r.get("/dashboard/alerts", summary="Newest alerts: drift, quality, SLO, budget, rollbacks")
    async def alerts(limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
        found = await h.log.query(EventQuery(types=list(ALERT_TYPES), limit=limit, descending=True))
        return {"types": list(ALERT_TYPES), "data": [e.model_dump(mode="json") for e in found]}

    @r.get("/dashboard/suites", summary="Evaluation suites that can be named in an evaluation")
    def suites() -> dict[str, Any]:
        folders = [h.settings.home / "evaluations" / "suites"]
        folders += [Path(p) for p in h.settings.evaluation.suite_paths]
        found: dict[str, str] = {}
        for folder in folders:
            for f in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
                found.setdefault(f.stem, str(folder))
        return {"data": [{"name": n, "folder": d} for n, d in sorted(found.items())]}

    return r
