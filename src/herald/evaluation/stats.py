"""Bootstrap confidence intervals and paired bootstrap significance (pure Python, seeded).

``bootstrap_ci`` resamples the items of one evaluation; ``paired_bootstrap`` resamples the items
two evaluations share and reports the mean difference B - A with its interval and a one-sided
p-value (the share of resamples where B does not beat A).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Estimate:
    """A mean with a percentile bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PairedResult:
    """B - A over shared items: mean difference, its interval and a one-sided p-value."""

    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    confidence: float

    @property
    def b_better(self) -> bool:
        """B beats A beyond the interval (the whole interval is above zero)."""
        return self.ci_low > 0.0

    @property
    def a_better(self) -> bool:
        return self.ci_high < 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "b_better": self.b_better, "a_better": self.a_better}


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _percentile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 1]) of sorted values."""
    if len(sorted_xs) == 1:
        return sorted_xs[0]
    pos = q * (len(sorted_xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def _check(confidence: float, resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError("resamples must be >= 1")


def bootstrap_ci(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> Estimate:
    """Mean of ``values`` with a percentile bootstrap interval (deterministic for a seed)."""
    _check(confidence, resamples)
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("bootstrap_ci needs at least one value")
    mean = _mean(xs)
    if len(xs) == 1 or min(xs) == max(xs):
        return Estimate(mean, mean, mean, len(xs), confidence)
    rng = random.Random(seed)
    n = len(xs)
    means = sorted(_mean([xs[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    alpha = (1.0 - confidence) / 2.0
    low, high = _percentile(means, alpha), _percentile(means, 1.0 - alpha)
    return Estimate(mean, min(low, mean), max(high, mean), n, confidence)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> PairedResult:
    """Paired bootstrap of B - A over items scored by both (same order, same length)."""
    _check(confidence, resamples)
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length ({len(a)} vs {len(b)})")
    if not a:
        raise ValueError("paired_bootstrap needs at least one shared item")
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    diff = _mean(diffs)
    rng = random.Random(seed)
    boots = sorted(_mean([diffs[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    alpha = (1.0 - confidence) / 2.0
    low, high = _percentile(boots, alpha), _percentile(boots, 1.0 - alpha)
    p = sum(1 for d in boots if d <= 0.0) / resamples
    return PairedResult(_mean(list(a)), _mean(list(b)), diff, low, high, p, n, confidence)
