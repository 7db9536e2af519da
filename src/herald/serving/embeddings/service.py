"""Embeddings: float lists or base64 (little-endian float32, as the OpenAI client decodes)."""

from __future__ import annotations

import base64
import math
import struct
import time

from herald.serving.common import new_id
from herald.serving.embeddings.protocol import (
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
)
from herald.serving.errors import BadParameter, CapabilityNotSupported, ServingError
from herald.serving.generation import as_serving_error, record_failure
from herald.serving.hooks import RequestContext, RequestRecord
from herald.serving.limits import check_prompt_chars
from herald.serving.pool import ModelPool


def encode_base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


class EmbeddingService:
    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool

    async def create(self, req: EmbeddingRequest) -> EmbeddingResponse:
        ctx = RequestContext(new_id("embd"), "embeddings", req.model, req.user)
        backend_name = ""
        started = time.perf_counter()
        try:
            inputs = req.inputs()
            check_prompt_chars(  # per input, before anything tokenizes it
                req.prompt_sizes(), self.pool.max_prompt_chars, self.pool.metrics.registry
            )
            replica = await self.pool.route(req.model, user=req.user)
            backend_name = replica.spec.backend
            ctx.version = replica.spec.version
            if "embeddings" not in replica.backend.capabilities:
                raise CapabilityNotSupported(
                    f"model {req.model!r} does not compute embeddings; use an embedding model "
                    "such as all-minilm-l6-v2",
                    param="model",
                )
            await self.pool.hooks.run_before(ctx, {"request": req})
            replica.admit()
            async with replica.slot():
                try:
                    result = await replica.backend.embed(inputs)
                except ServingError:
                    raise
                except Exception as exc:
                    raise as_serving_error(exc) from exc
        except ServingError as exc:
            record_failure(self.pool, ctx, backend_name, exc)
            raise
        vectors = result.vectors
        if req.dimensions is not None:
            width = len(vectors[0]) if vectors else 0
            if req.dimensions > width:
                raise BadParameter(
                    f"dimensions={req.dimensions} exceeds the model's {width} dimensions",
                    param="dimensions",
                )
            vectors = [_renorm(v[: req.dimensions]) for v in vectors]
        labels = (ctx.model, ctx.version)
        m = self.pool.metrics
        m.prompt_tokens.labels(*labels).inc(result.prompt_tokens)
        m.e2e.labels(*labels).observe(time.perf_counter() - started)
        m.success.labels(*labels, "stop").inc()
        self.pool.hooks.record(
            RequestRecord(
                request_id=ctx.request_id,
                endpoint="embeddings",
                model=ctx.model,
                version=ctx.version,
                backend=backend_name,
                status=200,
                latency_s=time.perf_counter() - started,
                prompt_tokens=result.prompt_tokens,
                user=req.user,
            )
        )
        b64 = req.encoding_format == "base64"
        return EmbeddingResponse(
            data=[
                EmbeddingData(embedding=encode_base64(v) if b64 else v, index=i)
                for i, v in enumerate(vectors)
            ],
            model=req.model,
            usage=EmbeddingUsage(
                prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens
            ),
        )


def _renorm(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]
