"""Drift statistics on synthetic data: false-positive rate near alpha without shift, power on a
clear shift, and no verdict on too few samples."""

from __future__ import annotations

import numpy as np
import pytest

from herald.monitoring.drift import chi2_test, ks_test, language_guess, mmd_test

ALPHA = 0.05


def test_mmd_false_positive_rate_within_alpha() -> None:
    rng = np.random.default_rng(1)
    trials = 40
    hits = sum(
        mmd_test(
            rng.normal(size=(40, 8)), rng.normal(size=(40, 8)), permutations=100, seed=i
        ).p_value
        < ALPHA
        for i in range(trials)
    )
    assert hits / trials <= ALPHA + 0.05  # binomial slack over 40 trials


def test_mmd_detects_a_clear_shift() -> None:
    rng = np.random.default_rng(2)
    hits = sum(
        mmd_test(
            rng.normal(size=(40, 8)), rng.normal(0.8, 1.0, size=(40, 8)), permutations=100, seed=i
        ).p_value
        < ALPHA
        for i in range(10)
    )
    assert hits == 10


def test_too_few_samples_gives_no_verdict() -> None:
    res = mmd_test(np.zeros((3, 4)), np.ones((3, 4)), min_samples=20)
    assert not res.enough_data and res.p_value == 1.0
    assert "needs >= 20" in res.details["reason"]


def test_mmd_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same number of columns"):
        mmd_test(np.zeros((30, 4)), np.zeros((30, 5)))


def test_ks_and_chi2() -> None:
    rng = np.random.default_rng(3)
    same = ks_test(list(rng.normal(50, 10, 200)), list(rng.normal(50, 10, 200)))
    shifted = ks_test(list(rng.normal(50, 10, 200)), list(rng.normal(90, 10, 200)))
    assert same.p_value > 0.01 and shifted.p_value < 1e-6
    ref = ["en"] * 90 + ["latin"] * 10
    assert chi2_test(ref, ["en"] * 88 + ["latin"] * 12).p_value > 0.05
    assert chi2_test(ref, ["en"] * 40 + ["cyrillic"] * 60).p_value < 1e-6


def test_language_guess() -> None:
    assert language_guess("What is the capital of France?") == "en"
    assert language_guess("Quelle est la capitale de la France ?") == "latin"
    assert language_guess("Какая столица Франции?") == "cyrillic"
    assert language_guess("法国的首都是哪里") == "cjk"
    assert language_guess("1234 !!") == "unknown"
