"""The engine port and the engine registry.

An engine scores items. ``score`` gets one :class:`ItemContext` — the sample, the target's
shared chat response (generated once per item for every engine that needs it) and a client of
the target — and returns ``{metric: value}`` for the metrics that apply to that item. A failure
raises :class:`~herald.evaluation.errors.ItemError`: the runner records the message on the item
and counts it against every metric of that engine (never a silently smaller denominator).

Engines that run a whole task at once (``lm-eval``) set ``batch = True`` and implement
``run_batch``. Engines are found by name: the built-ins below, then the ``herald.eval_engines``
entry-point group (``name = "package.module:EngineClass"``).
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from herald.adapters import Adapters
from herald.evaluation.errors import ItemError, SuiteError
from herald.evaluation.stats import bootstrap_ci

if TYPE_CHECKING:
    from herald.evaluation.suites import Sample, Suite
    from herald.evaluation.targets import ChatResult, OpenAIClient

BUILTIN_ENGINES: dict[str, str] = {
    "reference": "herald.evaluation.engines.reference:ReferenceEngine",
    "judge": "herald.evaluation.engines.judge:JudgeEngine",
    "format": "herald.evaluation.engines.format:FormatEngine",
    "safety": "herald.evaluation.engines.safety:SafetyEngine",
    "rag": "herald.evaluation.engines.rag:RagEngine",
    "performance": "herald.evaluation.engines.performance:PerformanceEngine",
    "lm-eval": "herald.evaluation.engines.lm_eval:LmEvalEngine",
}


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


ClientFactory = Callable[[str | None, str | None], Awaitable["OpenAIClient"]]


@dataclass
class RunContext:
    """What engines see of the whole run."""

    suite: Suite
    client: OpenAIClient
    base_url: str
    target: str
    open_client: ClientFactory  # (target, model) → a client of another target (judges)
    samples: list[Sample] = field(default_factory=list)
    concurrency: int = 8


@dataclass
class ItemContext:
    """One item as an engine sees it."""

    sample: Sample
    run: RunContext
    response: ChatResult | None = None

    @property
    def client(self) -> OpenAIClient:
        return self.run.client

    @property
    def text(self) -> str:
        if self.response is None:
            raise ItemError("this engine needs a generated response, and there is none")
        return self.response.text


class Engine(ABC):
    """Scores items for a fixed list of metrics."""

    name: ClassVar[str]
    known_metrics: ClassVar[tuple[str, ...]]
    default_metrics: ClassVar[tuple[str, ...]]
    options_model: ClassVar[type[BaseModel]] = NoOptions
    needs_generation: ClassVar[bool] = True
    batch: ClassVar[bool] = False
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    percentiles: ClassVar[bool] = False

    def __init__(self, metrics: Sequence[str], options: dict[str, Any]) -> None:
        self.metrics = tuple(metrics or self.default_metrics)
        self.options: Any = self.options_model.model_validate(options)

    @property
    def generation_needed(self) -> bool:
        """Whether items need the target's chat response before :meth:`score`."""
        return self.needs_generation

    async def setup(self, run: RunContext) -> None:
        """Prepare once per run (open a judge client, load resources)."""

    async def score(self, item: ItemContext) -> dict[str, float]:
        """``{metric: value}`` for one item; raise :class:`ItemError` when it cannot be scored."""
        raise NotImplementedError(f"engine {self.name!r} scores whole runs (batch)")

    async def run_batch(self, run: RunContext, done: set[str]) -> list[ItemScores]:
        """Batch engines: score every item not in ``done`` at once."""
        raise NotImplementedError(f"engine {self.name!r} scores items one by one")

    def aggregate(self, metric: str, rows: list[dict[str, float]]) -> dict[str, Any]:
        """Summary of one metric over the items that have it: mean with a bootstrap CI."""
        values = [r[metric] for r in rows if metric in r]
        if not values:
            return {"value": None, "ci_low": None, "ci_high": None, "n": 0}
        est = bootstrap_ci(values, seed=0)
        out: dict[str, Any] = {
            "value": est.value,
            "ci_low": est.ci_low,
            "ci_high": est.ci_high,
            "n": est.n,
        }
        if self.percentiles:
            ordered = sorted(values)
            out["p50"] = ordered[int(0.5 * (len(ordered) - 1))]
            out["p95"] = ordered[round(0.95 * (len(ordered) - 1))]
        return out


@dataclass
class ItemScores:
    """What a batch engine produced for one item."""

    sample_id: str
    scores: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    output: str | None = None
    input: Any = None


ENGINES: Adapters[type[Engine]] = Adapters(
    "engine",
    "herald.eval_engines",
    BUILTIN_ENGINES,
    check=lambda cls: isinstance(cls, type) and issubclass(cls, Engine),
    error=SuiteError,
)


def register_engine(name: str, target: str) -> None:
    """Register ``"module:Class"`` under ``name`` (plugins and tests)."""
    ENGINES.register(name, target)


def known_engines() -> dict[str, str]:
    return {name: str(target) for name, target in ENGINES.targets().items()}


def engine_class(name: str) -> type[Engine]:
    return ENGINES.load(name)


def create_engine(name: str, metrics: Sequence[str], options: dict[str, Any]) -> Engine:
    return engine_class(name)(metrics, options)
