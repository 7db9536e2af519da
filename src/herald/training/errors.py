"""Errors of the fine-tuning capability (all :class:`herald.errors.HeraldError` subclasses).

ConfigurationError
└── FinetuneConfigError   a config key, value or combination is invalid (before training)
HeraldError
└── TrainingError         training could not run or finish (data, model, disk)
    └── TrainingCancelled the job was cancelled; the run is marked "killed"
"""

from __future__ import annotations

from herald.errors import ConfigurationError, HeraldError


class FinetuneConfigError(ConfigurationError):
    """A fine-tuning config is invalid: unknown key, bad value or impossible combination."""

    code = "invalid_finetune_config"
    status = 422


class TrainingError(HeraldError):
    """Training could not run or finish."""

    code = "training_error"
    status = 500


class TrainingCancelled(TrainingError):
    """The job was cancelled while training."""

    code = "training_cancelled"
    status = 409
