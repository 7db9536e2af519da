"""``reference``: compare the response with reference answers; multiple choice and perplexity
by log-likelihood through ``/v1/completions`` (``echo``, ``logprobs=1``, ``max_tokens=0``)."""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.evaluation import metrics as m
from herald.evaluation.base import Engine, ItemContext
from herald.evaluation.errors import ItemError

GENERATION_METRICS = (
    "exact_match",
    "normalized_match",
    "contains",
    "regex",
    "f1",
    "bleu",
    "chrf",
    "rouge_l",
)
LOGLIK_METRICS = ("mc_accuracy", "mc_accuracy_norm", "perplexity")


class ReferenceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    regex: str | None = Field(
        None, description="pattern for the 'regex' metric (default: the sample's checks.regex)"
    )
    strip_after: str | None = Field(
        None, description="cut the response at this marker first (e.g. a newline)"
    )


class ReferenceEngine(Engine):
    name = "reference"
    known_metrics: ClassVar[tuple[str, ...]] = GENERATION_METRICS + LOGLIK_METRICS
    default_metrics: ClassVar[tuple[str, ...]] = ("exact_match", "normalized_match", "f1")
    options_model = ReferenceOptions
    lower_is_better = frozenset({"perplexity"})

    @property
    def generation_needed(self) -> bool:
        return any(x in GENERATION_METRICS for x in self.metrics)

    async def score(self, item: ItemContext) -> dict[str, float]:
        out: dict[str, float] = {}
        s = item.sample
        gen = [x for x in self.metrics if x in GENERATION_METRICS]
        if gen:
            refs = s.references()
            if not refs:
                raise ItemError("sample has no 'reference' (needed by the reference engine)")
            text = item.text
            if self.options.strip_after:
                text = text.split(self.options.strip_after, 1)[0]
            for name in gen:
                if name == "regex":
                    pattern = self.options.regex or (s.checks or {}).get("regex")
                    if not pattern:
                        raise ItemError("metric 'regex' needs options.regex or checks.regex")
                    out[name] = m.regex_match(text, pattern)
                else:
                    out[name] = m.TEXT_METRICS[name](text, refs)
        if "mc_accuracy" in self.metrics or "mc_accuracy_norm" in self.metrics:
            out |= await self._multiple_choice(item)
        if "perplexity" in self.metrics:
            refs = s.references()
            scored_text = s.text if s.text is not None else (refs[0] if refs else None)
            if not scored_text:
                raise ItemError("perplexity needs 'text' (or a reference) on the sample")
            _, logprobs, _ = await item.client.echo_logprobs(scored_text)
            scored = [lp for lp in logprobs if lp is not None]
            if not scored:
                raise ItemError("the target scored no token of the text")
            out["perplexity"] = m.perplexity(scored)
            out["_logprob_sum"] = float(sum(scored))
            out["_tokens"] = float(len(scored))
        return out

    async def _multiple_choice(self, item: ItemContext) -> dict[str, float]:
        s = item.sample
        if not s.choices or s.answer is None:
            raise ItemError("multiple choice needs 'choices' and 'answer' on the sample")
        context = s.prompt if s.prompt is not None else _chat_as_text(s.chat())
        results = await asyncio.gather(
            *(item.client.loglikelihood(context, " " + c.strip()) for c in s.choices)
        )
        lps = [lp for lp, _ in results]
        res = m.multiple_choice(lps, s.answer, [len(c.strip()) for c in s.choices])
        out: dict[str, float] = {}
        if "mc_accuracy" in self.metrics:
            out["mc_accuracy"] = res["acc"]
        if "mc_accuracy_norm" in self.metrics:
            out["mc_accuracy_norm"] = res["acc_norm"]
        out["_choice"] = float(max(range(len(lps)), key=lambda i: lps[i]))
        return out

    def aggregate(self, metric: str, rows: list[dict[str, float]]) -> dict[str, Any]:
        if metric != "perplexity":
            return super().aggregate(metric, rows)
        pairs = [(r["_logprob_sum"], r["_tokens"]) for r in rows if "_logprob_sum" in r]
        if not pairs:
            return {"value": None, "ci_low": None, "ci_high": None, "n": 0}

        def corpus(ps: list[tuple[float, float]]) -> float:
            return math.exp(-sum(p[0] for p in ps) / sum(p[1] for p in ps))

        rng = random.Random(0)
        boots = sorted(
            corpus([pairs[rng.randrange(len(pairs))] for _ in pairs]) for _ in range(1000)
        )
        value = corpus(pairs)
        return {
            "value": value,
            "ci_low": min(boots[25], value),
            "ci_high": max(boots[974], value),
            "n": len(pairs),
        }


def _chat_as_text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        parts.append(str(content or ""))
    return "\n".join(parts)
