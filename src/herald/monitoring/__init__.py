"""Monitoring: windowed metrics over request logs and feedback, drift statistics, threshold
rules that emit typed messages, and the default sensors that close the retraining loop.

Imports stay light (no torch): embeddings are computed only when a drift rule needs them.
"""

from herald.monitoring.drift import DriftResult, chi2_test, ks_test, language_guess, mmd_test

__all__ = ["DriftResult", "chi2_test", "ks_test", "language_guess", "mmd_test"]
