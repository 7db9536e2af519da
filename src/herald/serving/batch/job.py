"""Batch inference as a job (a built-in plugin: cheap to import).

Input: OpenAI Batch JSONL — ``{"custom_id": "r1", "method": "POST", "url":
"/v1/chat/completions", "body": {...}}`` per line — read from the artifact store. Output
(``batches/<batch_id>/output.jsonl``): ``{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error": null}`` per line in input order; a request the gateway refuses
keeps its OpenAI error object as the body with its status code. Requests go through the same
pool, deployments, guardrails and metrics as online traffic (``stream`` is forced off).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.sensors.base import SensorContext, sensor
from herald.serving.batch.messages import BatchCompleted, BatchRequested

BATCH_JOB = "serving.batch"
MAX_LINES = 50_000


class BatchInputError(ValueError):
    """The input file is not valid Batch JSONL."""


def parse_batch(data: bytes, endpoint: str) -> list[dict[str, Any]]:
    """Validate the input lines (custom_id unique, url = endpoint, body an object)."""
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, raw in enumerate(data.decode("utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError as exc:
            raise BatchInputError(f"line {n}: not JSON ({exc})") from None
        if not isinstance(item, dict):
            raise BatchInputError(f"line {n}: expected a JSON object")
        cid = item.get("custom_id")
        if not isinstance(cid, str) or not cid:
            raise BatchInputError(f"line {n}: 'custom_id' (a non-empty string) is required")
        if cid in seen:
            raise BatchInputError(f"line {n}: duplicate custom_id {cid!r}")
        seen.add(cid)
        if item.get("method", "POST") != "POST":
            raise BatchInputError(f"line {n}: method must be POST")
        if item.get("url", endpoint) != endpoint:
            raise BatchInputError(
                f"line {n}: url {item.get('url')!r} differs from the batch endpoint {endpoint}"
            )
        if not isinstance(item.get("body"), dict):
            raise BatchInputError(f"line {n}: 'body' must be a JSON object")
        lines.append(item)
        if len(lines) > MAX_LINES:
            raise BatchInputError(f"at most {MAX_LINES} requests per batch")
    if not lines:
        raise BatchInputError("the input file has no requests")
    return lines


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


def _pool() -> Any:
    from herald.serving.deployments.sensors import _bound

    if _bound is None:
        raise RuntimeError("batch jobs run in a Herald process with a model pool (inline executor)")
    return _bound.pool


@job(name=BATCH_JOB, executor="inline", max_attempts=1)
async def run_batch(
    batch_id: str,
    input_uri: str,
    endpoint: str = "/v1/chat/completions",
    concurrency: int = 4,
    ctx: JobContext | None = None,
) -> BatchCompleted:
    """Run every request of a Batch JSONL file through the gateway; write the results JSONL."""
    from herald.artifacts import open_artifact_store

    started = time.perf_counter()
    store = open_artifact_store()
    job_id = ctx.job_id if ctx is not None else None
    try:
        key = store.key_of(input_uri) if "://" in input_uri else input_uri
        lines = parse_batch(store.get_bytes(key), endpoint)
    except Exception as exc:
        msg = getattr(exc, "message", None) or str(exc)
        return BatchCompleted(batch_id=batch_id, status="failed", error=msg, job_id=job_id)
    pool = _pool()
    results: list[dict[str, Any] | None] = [None] * len(lines)
    sem = asyncio.Semaphore(concurrency)
    done = 0
    failed = 0

    async def one(i: int, item: dict[str, Any]) -> None:
        nonlocal done, failed
        async with sem:
            if ctx is not None and ctx.cancelled:
                status, body = 499, {"error": {"message": "batch cancelled", "code": "cancelled"}}
            else:
                status, body = await run_one(pool, endpoint, item["body"])
        failed += status != 200
        done += 1
        results[i] = {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": item["custom_id"],
            "response": {"status_code": status, "request_id": body.get("id", ""), "body": body},
            "error": None,
        }
        if ctx is not None and (done % 10 == 0 or done == len(lines)):
            ctx.progress(done / len(lines), f"{done}/{len(lines)} requests", failed=float(failed))

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
