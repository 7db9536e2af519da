"""``performance``: latency, time to first token, decode speed and cost of the target.

Timings come from the shared streamed chat response of each item. ``tokens_per_s`` is
completion tokens over the time after the first token (decode speed) — or over the whole
latency when the text arrived in one chunk (a guardrailed or buffered stream); ``cost_per_1k_tokens``
uses ``options.price_per_1k_prompt`` / ``price_per_1k_completion`` (in your currency) and is the
item's cost per 1000 tokens processed. Summaries carry p50/p95 besides the mean.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.evaluation.base import Engine, ItemContext
from herald.evaluation.errors import ItemError


class PerformanceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price_per_1k_prompt: float = Field(0.0, ge=0.0)
    price_per_1k_completion: float = Field(0.0, ge=0.0)


class PerformanceEngine(Engine):
    name = "performance"
    known_metrics: ClassVar[tuple[str, ...]] = (
        "latency_s",
        "ttft_s",
        "tokens_per_s",
        "completion_tokens",
        "cost_per_1k_tokens",
    )
    default_metrics: ClassVar[tuple[str, ...]] = (
        "latency_s",
        "ttft_s",
        "tokens_per_s",
        "completion_tokens",
    )
    options_model = PerformanceOptions
    lower_is_better = frozenset({"latency_s", "ttft_s", "cost_per_1k_tokens"})
    percentiles = True

    async def score(self, item: ItemContext) -> dict[str, float]:
        r = item.response
        if r is None:
            raise ItemError("no response to time")
        out: dict[str, float] = {}
        if "latency_s" in self.metrics:
            out["latency_s"] = r.latency_s
        if "ttft_s" in self.metrics and r.ttft_s is not None:
            out["ttft_s"] = r.ttft_s
        tokens = r.completion_tokens
        if "completion_tokens" in self.metrics and tokens is not None:
            out["completion_tokens"] = float(tokens)
        if "tokens_per_s" in self.metrics and tokens:
            decode = r.latency_s - (r.ttft_s or 0.0)
            # decode speed needs the text to arrive over time: a stream that came in one chunk
            # (a guardrail holding the reply back, a proxy buffering it) gives end-to-end speed
            streamed = r.content_chunks is None or r.content_chunks > 1
            if tokens > 1 and decode > 0 and streamed:
                out["tokens_per_s"] = (tokens - 1) / decode
            elif r.latency_s > 0:
                out["tokens_per_s"] = tokens / r.latency_s
        if "cost_per_1k_tokens" in self.metrics:
            if r.prompt_tokens is None or tokens is None:
                raise ItemError("the target reported no token usage (needed for cost)")
            o = self.options
            cost = r.prompt_tokens / 1000 * o.price_per_1k_prompt
            cost += tokens / 1000 * o.price_per_1k_completion
            total = r.prompt_tokens + tokens
            out["cost_per_1k_tokens"] = cost / total * 1000 if total else 0.0
        return out
