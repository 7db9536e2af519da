"""The evaluation-engine contract kit: what every :class:`~herald.evaluation.base.Engine` does.

An engine gets samples and the target's generations and returns metrics in the common shape:
``score`` gives ``{metric: float}`` for metrics of ``engine.metrics`` (plus ``_``-prefixed
diagnostics the engine's own ``aggregate`` may read), an item that cannot be scored raises
:class:`~herald.evaluation.errors.ItemError` (the runner records it and counts it), and
``aggregate`` summarises one metric as ``{"value", "ci_low", "ci_high", "n"}`` (plus ``p50`` /
``p95`` when ``percentiles``).

Subclass :class:`EngineContract` and provide an ``engine`` fixture (configured with the metrics
to check) and a ``cases`` fixture: :class:`EngineCase` items that together produce every one of
``engine.metrics``. Optional fixtures: ``unscorable`` (cases that must raise ``ItemError``) and
``make_target`` (a callable returning the :class:`~herald.evaluation.targets.OpenAIClient` the
engine talks to, for judges and log-likelihood metrics; created on the kit's event loop)::

    class TestToxicityEngine(EngineContract):
        @pytest.fixture
        def engine(self):
            return ToxicityEngine(["toxicity"], {"threshold": 0.5})

        @pytest.fixture
        def cases(self):
            return [case("Say hi", "Hello there!"), case("Insult me", "You are awful.")]
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from herald.errors import HeraldError
from herald.evaluation.base import Engine, ItemContext, RunContext
from herald.evaluation.errors import ItemError
from herald.evaluation.suites import EngineConfig, Sample, Suite
from herald.evaluation.targets import ChatResult, OpenAIClient

__all__ = ["EngineCase", "EngineContract", "TargetFactory", "case", "generation"]

TargetFactory = Callable[[], OpenAIClient]


def generation(
    text: str,
    *,
    latency_s: float = 0.5,
    ttft_s: float | None = 0.1,
    prompt_tokens: int | None = 12,
    completion_tokens: int | None = 8,
    content_chunks: int | None = 8,
) -> ChatResult:
    """The target's chat response for an item (timings and usage as a stream reports them)."""
    return ChatResult(
        text=text,
        latency_s=latency_s,
        ttft_s=ttft_s,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        finish_reason="stop",
        content_chunks=content_chunks,
    )


@dataclass(frozen=True)
class EngineCase:
    """One sample and the target's response to it (``None``: no response)."""

    sample: Sample
    response: ChatResult | None


_ids = iter(range(1_000_000))


def case(question: str, answer: str | None, **sample: Any) -> EngineCase:
    """A chat sample asking ``question`` (more sample fields as keywords) answered ``answer``."""
    s = Sample(
        id=sample.pop("id", f"item-{next(_ids)}"),
        messages=[{"role": "user", "content": question}],
        **sample,
    )
    return EngineCase(s, None if answer is None else generation(answer))


class EngineContract:
    """The observable contract of an evaluation engine (see the module doc)."""

    @pytest.fixture
    def unscorable(self) -> list[EngineCase]:
        return []

    @pytest.fixture
    def make_target(self) -> TargetFactory | None:
        return None

    def _drive(
        self,
        engine: Engine,
        make_target: TargetFactory | None,
        body: Callable[[RunContext], Awaitable[None]],
    ) -> None:
        async def main() -> None:
            client = make_target() if make_target is not None else None

            async def open_client(target: str | None, model: str | None) -> OpenAIClient:
                if client is None:
                    raise AssertionError(
                        f"engine {engine.name!r} asked for a client of {target or 'the target'}"
                        f" ({model or 'its model'}): give the kit a make_target fixture"
                    )
                return client

            suite = Suite(
                name="contract-kit",
                dataset="contract-kit.jsonl",
                engines=[EngineConfig(engine=engine.name, metrics=list(engine.metrics))],
            )
            run = RunContext(
                suite=suite,
                client=client,  # type: ignore[arg-type]  # None: engines must not need it
                base_url="http://target.invalid/v1",
                target="contract-kit-target",
                open_client=open_client,
            )
            try:
                await engine.setup(run)
                await body(run)
            finally:
                if client is not None:
                    await client.aclose()

        asyncio.run(main())

    @staticmethod
    async def _score(engine: Engine, run: RunContext, c: EngineCase) -> dict[str, float]:
        return await engine.score(ItemContext(c.sample, run, c.response))

    def test_declared_metrics_are_consistent(self, engine: Engine) -> None:
        assert isinstance(engine.name, str) and engine.name
        assert engine.metrics and set(engine.metrics) <= set(engine.known_metrics)
        assert set(engine.default_metrics) <= set(engine.known_metrics)
        assert set(engine.lower_is_better) <= set(engine.known_metrics)
        default = type(engine)([], {})  # no metrics named: the engine's defaults
        assert default.metrics and set(default.metrics) <= set(engine.known_metrics)

    def test_unknown_options_are_refused(self, engine: Engine) -> None:
        with pytest.raises((ValidationError, HeraldError)):
            type(engine)(list(engine.metrics), {"no_such_option_xyz": 1})

    def test_scores_are_floats_of_the_declared_metrics(
        self,
        engine: Engine,
        cases: list[EngineCase],
        make_target: TargetFactory | None,
    ) -> None:
        assert not engine.batch, "batch engines score whole runs: see run_batch"

        async def body(run: RunContext) -> None:
            produced: set[str] = set()
            for c in cases:
                scores = await self._score(engine, run, c)
                assert isinstance(scores, dict)
                for metric, value in scores.items():
                    assert metric in engine.metrics or metric.startswith("_"), metric
                    assert isinstance(value, int | float) and not isinstance(value, bool)
                    assert math.isfinite(value), (metric, value)
                produced |= scores.keys()
            missing = set(engine.metrics) - produced
            assert not missing, f"no case produced {sorted(missing)}: add cases that do"

        self._drive(engine, make_target, body)

    def test_scoring_is_deterministic(
        self, engine: Engine, cases: list[EngineCase], make_target: TargetFactory | None
    ) -> None:
        async def body(run: RunContext) -> None:
            first = [await self._score(engine, run, c) for c in cases]
            again = await asyncio.gather(*(self._score(engine, run, c) for c in cases))
            assert list(again) == first

        self._drive(engine, make_target, body)

    def test_unscorable_items_raise_item_error(
        self,
        engine: Engine,
        cases: list[EngineCase],
        unscorable: list[EngineCase],
        make_target: TargetFactory | None,
    ) -> None:
        bad = list(unscorable)
        if engine.generation_needed:  # the target's generation failed: no response
            bad.append(EngineCase(cases[0].sample, None))
        if not bad:
            pytest.skip("declared: needs no generation, and the subclass lists no unscorable item")

        async def body(run: RunContext) -> None:
            for c in bad:
                with pytest.raises(ItemError):
                    await self._score(engine, run, c)

        self._drive(engine, make_target, body)

    def test_aggregate_has_the_common_shape(
        self, engine: Engine, cases: list[EngineCase], make_target: TargetFactory | None
    ) -> None:
        async def body(run: RunContext) -> None:
            rows = [await self._score(engine, run, c) for c in cases]
            for metric in engine.metrics:
                summary = engine.aggregate(metric, rows)
                assert {"value", "ci_low", "ci_high", "n"} <= summary.keys(), summary
                assert summary["n"] == sum(metric in r for r in rows)
                assert summary["ci_low"] <= summary["value"] <= summary["ci_high"], summary
                if engine.percentiles:
                    assert {"p50", "p95"} <= summary.keys()
                empty = engine.aggregate(metric, [])
                assert (empty["value"], empty["n"]) == (None, 0)

        self._drive(engine, make_target, body)
