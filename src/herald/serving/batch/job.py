"""Batch inference as a job (a built-in plugin: cheap to import).

Input: OpenAI Batch JSONL — ``{"custom_id": "r1", "method": "POST", "url":
"/v1/chat/completions", "body": {...}}`` per line — read from the artifact store. Output
(``batches/<batch_id>/output.jsonl``): ``{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error": null}`` per line in input order; a request the gateway refuses
keeps its OpenAI error object as the body with its status code; a line that is no valid request
(not JSON, no or a duplicate ``custom_id``, another URL) gets ``"response": null, "error":
{"code": "invalid_request", "message": "line N: ..."}`` and the other lines still run. Progress
(``job.progressed`` metrics ``done``/``failed``/``total``) feeds ``GET /v1/batches/{id}``.
Requests go through the same pool, deployments, guardrails and metrics as online traffic
(``stream`` is forced off).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.sensors.base import SensorContext, sensor
from herald.services import Services
from herald.serving.batch.messages import BatchCompleted, BatchRequested

BATCH_JOB = "serving.batch"
MAX_LINES = 50_000


class BatchInputError(ValueError):
    """The input file as a whole is unusable (not UTF-8, no requests, too many)."""


@dataclass
class BatchLine:
    """One input line: a request to run, or the reason it cannot run (reported per line)."""

    line: int
    custom_id: str | None
    body: dict[str, Any] | None = None
    error: str | None = None


def parse_batch(data: bytes, endpoint: str) -> list[BatchLine]:
    """Validate the input lines. A bad line (not JSON, no ``custom_id``, a duplicate id, another
    URL, no body) becomes a :class:`BatchLine` with ``error`` and does not stop the others."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchInputError(f"the input file is not UTF-8 text ({exc})") from None
    lines: list[BatchLine] = []
    seen: set[str] = set()
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        if len(lines) >= MAX_LINES:
            raise BatchInputError(f"at most {MAX_LINES} requests per batch")
        lines.append(_line(n, raw, endpoint, seen))
    if not lines:
        raise BatchInputError("the input file has no requests")
    return lines


def _line(n: int, raw: str, endpoint: str, seen: set[str]) -> BatchLine:
    try:
        item = json.loads(raw)
    except ValueError as exc:
        return BatchLine(n, None, error=f"line {n}: not JSON ({exc})")
    if not isinstance(item, dict):
        return BatchLine(n, None, error=f"line {n}: expected a JSON object")
    cid = item.get("custom_id")
    if not isinstance(cid, str) or not cid:
        return BatchLine(n, None, error=f"line {n}: 'custom_id' (a non-empty string) is required")
    if cid in seen:
        return BatchLine(n, cid, error=f"line {n}: duplicate custom_id {cid!r}")
    seen.add(cid)
    if item.get("method", "POST") != "POST":
        return BatchLine(n, cid, error=f"line {n}: method must be POST")
    if item.get("url", endpoint) != endpoint:
        return BatchLine(
            n,
            cid,
            error=f"line {n}: url {item.get('url')!r} differs from the batch endpoint {endpoint}",
        )
    if not isinstance(item.get("body"), dict):
        return BatchLine(n, cid, error=f"line {n}: 'body' must be a JSON object")
    return BatchLine(n, cid, body=item["body"])


async def run_one(pool: Any, endpoint: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(status, response body) of one request through the data plane services."""
    from herald.serving.chat.protocol import ChatCompletionRequest
    from herald.serving.chat.service import ChatService
    from herald.serving.common import parse_request
    from herald.serving.completions.protocol import CompletionRequest
    from herald.serving.completions.service import CompletionService
    from herald.serving.embeddings.protocol import EmbeddingRequest
    from herald.serving.embeddings.service import EmbeddingService
    from herald.serving.errors import ServingError

    raw = json.dumps({**body, "stream": False}).encode()
    try:
        result: Any
        if endpoint == "/v1/chat/completions":
            result, _ = await ChatService(pool).create(parse_request(ChatCompletionRequest, raw))
        elif endpoint == "/v1/completions":
            result, _ = await CompletionService(pool).create(parse_request(CompletionRequest, raw))
        else:
            raw = json.dumps(body).encode()
            result = await EmbeddingService(pool).create(parse_request(EmbeddingRequest, raw))
    except ServingError as exc:
        return exc.status, exc.body()
    return 200, result.model_dump(mode="json")


def _pool(services: Services) -> Any:
    if services.deployments is None:
        raise RuntimeError("batch jobs run in a Herald process with a model pool (inline executor)")
    return services.deployments.pool


@job(name=BATCH_JOB, executor="inline", max_attempts=1)
async def run_batch(
    batch_id: str,
    input_uri: str,
    endpoint: str = "/v1/chat/completions",
    concurrency: int = 4,
    ctx: JobContext | None = None,
) -> BatchCompleted:
    """Run every request of a Batch JSONL file through the gateway; write the results JSONL."""
    started = time.perf_counter()
    services = Services.of_job(ctx)
    store = services.artifacts
    job_id = ctx.job_id if ctx is not None else None
    try:
        key = store.key_of(input_uri) if "://" in input_uri else input_uri
        lines = parse_batch(store.get_bytes(key), endpoint)
    except Exception as exc:
        msg = getattr(exc, "message", None) or str(exc)
        return BatchCompleted(batch_id=batch_id, status="failed", error=msg, job_id=job_id)
    pool = _pool(services)
    results: list[dict[str, Any] | None] = [None] * len(lines)
    sem = asyncio.Semaphore(concurrency)
    done = 0
    failed = 0

    async def one(i: int, item: BatchLine) -> None:
        nonlocal done, failed
        result: dict[str, Any] = {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": item.custom_id,
        }
        if item.body is None:  # reported per line, like OpenAI's error file
            failed += 1
            result |= {
                "response": None,
                "error": {"code": "invalid_request", "message": item.error},
            }
        else:
            async with sem:
                if ctx is not None and ctx.cancelled:
                    status, body = (
                        499,
                        {"error": {"message": "batch cancelled", "code": "cancelled"}},
                    )
                else:
                    status, body = await run_one(pool, endpoint, item.body)
            failed += status != 200
            response = {"status_code": status, "request_id": body.get("id", ""), "body": body}
            result |= {"response": response, "error": None}
        done += 1
        results[i] = result
        if ctx is not None and (done % 10 == 0 or done == len(lines)):
            ctx.progress(
                done / len(lines),
                f"{done}/{len(lines)} requests",
                done=float(done),
                failed=float(failed),
                total=float(len(lines)),
            )

    await asyncio.gather(*(one(i, item) for i, item in enumerate(lines)))
    out = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    ref = store.put_bytes(f"batches/{batch_id}/output.jsonl", out.encode())
    return BatchCompleted(
        batch_id=batch_id,
        output_uri=ref.uri,
        total=len(lines),
        completed=len(lines) - failed,
        failed=failed,
        duration_s=round(time.perf_counter() - started, 3),
        job_id=job_id,
    )


@sensor(on=BatchRequested, name="herald.serving.batch")
def on_batch_requested(msg: BatchRequested, ctx: SensorContext) -> None:
    """Start the ``serving.batch`` job for a ``batch.requested`` message."""
    ctx.run_job(
        BATCH_JOB,
        {
            "batch_id": msg.batch_id,
            "input_uri": msg.input_uri,
            "endpoint": msg.endpoint,
            "concurrency": msg.concurrency,
        },
    )
