"""Metrics against hand-computed values, and bootstrap properties with fixed seeds."""

from __future__ import annotations

import math

import pytest

from herald.evaluation import metrics as m
from herald.evaluation.stats import bootstrap_ci, paired_bootstrap


def test_exact_and_normalized_match() -> None:
    assert m.exact_match(" Paris ", "Paris") == 1.0
    assert m.exact_match("paris", "Paris") == 0.0
    assert m.normalized_match("The Paris!", ["Rome", "paris"]) == 1.0
    assert m.normalize("  The  Quick, brown-fox. ") == "quick brown fox"


def test_contains_is_word_bounded() -> None:
    assert m.contains("The capital is Paris.", "paris") == 1.0
    assert m.contains("Parisian food", "Paris") == 0.0
    assert m.regex_match("answer: 42", r"\b42\b") == 1.0


def test_token_f1_by_hand() -> None:
    # pred tokens: [cat, sat, on, mat]; gold: [cat, sat] -> P = 2/4, R = 2/2, F1 = 2/3
    assert m.token_f1("the cat sat on the mat", "a cat sat") == pytest.approx(2 / 3)
    assert m.token_f1("", "") == 1.0
    assert m.token_f1("dog", "cat") == 0.0
    assert m.token_f1("cat", ["dog", "cat"]) == 1.0


def test_rouge_l_by_hand() -> None:
    # LCS of [a b c d] and [a c d e] = [a c d] = 3; P = 3/4, R = 3/4 -> F = 0.75
    assert m.rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    assert m.rouge_l("x", "y") == 0.0


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        # rouge-score's values (RougeScorer(["rougeL"]).score(ref, pred).fmeasure)
        ("The capital of France is Paris.", "Paris", 2 / 7),
        ("Paris!", "Paris", 1.0),
        ("well-known, isn't it?", "well known isn t it", 1.0),
        ("Zürich.", "zürich", 1.0),  # non-ASCII letters are letters (rouge-score drops them)
    ],
)
def test_rouge_l_ignores_punctuation_as_rouge_score_does(
    prediction: str, reference: str, expected: float
) -> None:
    assert m.rouge_l(prediction, reference) == pytest.approx(expected)


def test_bleu_and_chrf_scaled() -> None:
    assert m.bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert m.chrf("the cat", "the cat") == pytest.approx(1.0)
    partial = m.bleu("the cat is on the mat", "the cat sat on the mat")
    assert 0.0 < partial < 1.0
    assert partial == pytest.approx(0.3799, abs=1e-3)  # sacrebleu 2.x sentence BLEU


def test_multiple_choice_and_length_normalisation() -> None:
    # choice 1 has the highest total logprob; per character choice 0 (-2/10) beats 1 (-1.5/3)
    res = m.multiple_choice([-2.0, -1.5, -4.0], answer=1, choice_lengths=[10, 3, 5])
    assert res == {"acc": 1.0, "acc_norm": 0.0}
    with pytest.raises(ValueError, match="answer index"):
        m.multiple_choice([-1.0, -2.0], answer=2)


def test_perplexity_by_hand() -> None:
    assert m.perplexity([math.log(0.5), math.log(0.5)]) == pytest.approx(2.0)
    # exp(-(ln .5 + ln .25 + ln .5) / 3) = exp(ln 16 / 3) = 16^(1/3)
    assert m.corpus_perplexity([math.log(0.5), math.log(0.25) + math.log(0.5)], [1, 2]) == (
        pytest.approx(16 ** (1 / 3))
    )
    with pytest.raises(ValueError):
        m.perplexity([])


def test_bootstrap_ci_properties() -> None:
    values = [1.0] * 30 + [0.0] * 70
    a = bootstrap_ci(values, seed=7)
    b = bootstrap_ci(values, seed=7)
    assert a == b  # deterministic for a seed
    assert a.value == pytest.approx(0.3)
    assert a.ci_low < 0.3 < a.ci_high
    # normal approximation: 1.96 * sqrt(.3 * .7 / 100) ~ 0.09
    assert a.ci_high - a.ci_low == pytest.approx(2 * 0.0898, abs=0.04)
    narrow = bootstrap_ci(values * 10, seed=7)
    assert narrow.ci_high - narrow.ci_low < a.ci_high - a.ci_low
    wide = bootstrap_ci(values, seed=7, confidence=0.99)
    assert wide.ci_high - wide.ci_low >= a.ci_high - a.ci_low
    constant = bootstrap_ci([0.5] * 10)
    assert (constant.ci_low, constant.ci_high) == (0.5, 0.5)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_paired_bootstrap_detects_a_real_difference() -> None:
    a = [0.0] * 60 + [1.0] * 40
    better = [1.0] * 80 + [0.0] * 20  # wins 60 items, loses 20: +0.4
    res = paired_bootstrap(a, better, seed=1)
    assert res.diff == pytest.approx(0.4)
    assert res.b_better and not res.a_better
    assert res.p_value == 0.0
    same = paired_bootstrap(a, a, seed=1)
    assert same.diff == 0.0 and not same.b_better and not same.a_better
    noisy = paired_bootstrap([1.0, 0.0] * 5, [0.0, 1.0] * 5, seed=1)
    assert noisy.ci_low < 0 < noisy.ci_high
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0], [1.0, 0.0])
