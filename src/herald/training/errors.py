"""Errors of the fine-tuning capability (all :class:`herald.errors.HeraldError` subclasses).

ConfigurationError
└── FinetuneConfigError   a config key, value or combination is invalid (before training)
HeraldError
└── TrainingError         training could not run or finish (data, model, disk)
    ├── TrainingCancelled the job was cancelled; the run is marked "killed"
    └── InTrainingEvaluationFailed  an eval_suites evaluation raised or scored no item
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


class InTrainingEvaluationFailed(TrainingError):
    """An evaluation the config asked for (``eval_suites``) raised or scored no item: the run
    fails with its error. 422 (not retried) unless the cause was one a retry may fix."""

    code = "in_training_evaluation_failed"

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = 500 if retryable else 422
