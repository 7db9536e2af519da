"""Two-sample drift statistics between a reference window and a live window.

- :func:`mmd_test`: maximum mean discrepancy on embeddings (Gaussian kernel, median-heuristic
  bandwidth, unbiased MMD²) with a permutation-test p-value.
- :func:`ks_test`: Kolmogorov-Smirnov on a numeric feature (prompt length).
- :func:`chi2_test`: chi-square on a categorical feature (language guess).

Each returns a :class:`DriftResult`; with fewer than ``min_samples`` on either side the result
says so (``enough_data=False``, p-value 1.0) instead of reporting drift on a handful of requests.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from herald.errors import ConfigurationError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Array = NDArray[np.float64]


def _np() -> Any:
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy ships with the monitoring extra
        raise ConfigurationError(
            'drift statistics need numpy and scipy: pip install "herald[monitoring]"'
        ) from None
    return numpy


@dataclass
class DriftResult:
    """Outcome of one two-sample test."""

    test: str
    statistic: float
    p_value: float
    n_reference: int
    n_live: int
    enough_data: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _too_few(test: str, n_ref: int, n_live: int, min_samples: int) -> DriftResult | None:
    if min(n_ref, n_live) >= min_samples:
        return None
    return DriftResult(
        test,
        0.0,
        1.0,
        n_ref,
        n_live,
        enough_data=False,
        details={"reason": f"needs >= {min_samples} samples per window, got {n_ref} and {n_live}"},
    )


def _subsample(x: Array, cap: int, rng: Any) -> Array:
    return x if len(x) <= cap else x[rng.choice(len(x), cap, replace=False)]


def mmd_test(
    reference: Sequence[Sequence[float]] | Array,
    live: Sequence[Sequence[float]] | Array,
    *,
    permutations: int = 500,
    min_samples: int = 20,
    max_samples: int = 500,
    seed: int = 0,
) -> DriftResult:
    """MMD² between two sets of vectors with a permutation-test p-value."""
    np = _np()
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(live, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or (len(x) and len(y) and x.shape[1] != y.shape[1]):
        raise ValueError("mmd_test expects two 2-D arrays with the same number of columns")
    short = _too_few("mmd", len(x), len(y), min_samples)
    if short is not None:
        return short
    rng = np.random.default_rng(seed)
    x, y = _subsample(x, max_samples, rng), _subsample(y, max_samples, rng)
    z = np.vstack([x, y])
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)
    off = d2[np.triu_indices(len(z), 1)]
    median = float(np.median(off[off > 0])) if np.any(off > 0) else 1.0
    k = np.exp(-d2 / median)
    n, m = len(x), len(y)

    def mmd2(idx: Any) -> float:
        a, b = idx[:n], idx[n:]
        kxx = k[np.ix_(a, a)]
        kyy = k[np.ix_(b, b)]
        kxy = k[np.ix_(a, b)]
        return float(
            (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2.0 * kxy.mean()
        )

    base = np.arange(n + m)
    observed = mmd2(base)
    exceed = sum(mmd2(rng.permutation(base)) >= observed for _ in range(permutations))
    p = (1 + exceed) / (1 + permutations)
    return DriftResult(
        "mmd",
        observed,
        p,
        n,
        m,
        details={"bandwidth": median, "permutations": permutations},
    )


def ks_test(
    reference: Sequence[float], live: Sequence[float], *, min_samples: int = 20
) -> DriftResult:
    """Two-sample Kolmogorov-Smirnov test on a numeric feature."""
    np = _np()
    short = _too_few("ks", len(reference), len(live), min_samples)
    if short is not None:
        return short
    from scipy.stats import ks_2samp  # type: ignore[import-untyped,unused-ignore]

    res = ks_2samp(np.asarray(reference, float), np.asarray(live, float))
    return DriftResult(
        "ks",
        float(res.statistic),
        float(res.pvalue),
        len(reference),
        len(live),
        details={
            "reference_mean": float(np.mean(reference)),
            "live_mean": float(np.mean(live)),
        },
    )


def chi2_test(
    reference: Sequence[str], live: Sequence[str], *, min_samples: int = 20
) -> DriftResult:
    """Chi-square test of homogeneity on a categorical feature."""
    np = _np()
    short = _too_few("chi2", len(reference), len(live), min_samples)
    if short is not None:
        return short
    rc, lc = Counter(reference), Counter(live)
    cats = sorted(set(rc) | set(lc))
    details: dict[str, Any] = {"reference": dict(rc), "live": dict(lc)}
    if len(cats) < 2:
        return DriftResult("chi2", 0.0, 1.0, len(reference), len(live), details=details)
    from scipy.stats import chi2_contingency  # type: ignore[import-untyped,unused-ignore]

    table = np.array([[rc[c] for c in cats], [lc[c] for c in cats]])
    res = chi2_contingency(table)
    return DriftResult(
        "chi2", float(res.statistic), float(res.pvalue), len(reference), len(live), details=details
    )


_EN = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "is",
        "are",
        "was",
        "be",
        "it",
        "that",
        "this",
        "for",
        "on",
        "with",
        "as",
        "what",
        "how",
        "why",
        "who",
        "which",
        "you",
        "i",
        "we",
        "can",
        "do",
        "does",
        "please",
    ]
)
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "DEVANAGARI", "HANGUL", "THAI")


def language_guess(text: str) -> str:
    """A cheap language/script label: ``en``, ``latin`` (other Latin-script), ``cyrillic``,
    ``cjk``, ``arabic``, …, or ``unknown``. Good enough to notice a shift in the traffic mix."""
    counts: Counter[str] = Counter()
    for ch in text:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        if name.startswith(("CJK", "HIRAGANA", "KATAKANA")):
            counts["cjk"] += 1
            continue
        for script in _SCRIPTS:
            if name.startswith(script):
                counts[script.lower()] += 1
                break
    if not counts:
        return "unknown"
    script = counts.most_common(1)[0][0]
    if script == "latin":
        words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
        hits = sum(w in _EN for w in words)
        return "en" if words and hits / len(words) >= 0.15 else "latin"
    return script
