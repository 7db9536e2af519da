"""Errors of the Omni-Evaluator (all :class:`herald.HeraldError` subclasses)::

SuiteError        (ConfigurationError, 400) a suite file or its data set is invalid
TargetError       (HeraldError, 400)        a target string cannot be understood
TargetUnreachable (BackendError, 503)       the target endpoint does not answer
ItemError         (HeraldError)             one item failed in one engine (recorded, counted)
EvaluationItemsFailed (HeraldError, 422)    every item failed: the evaluation scored nothing
"""

from __future__ import annotations

from herald.errors import BackendError, ConfigurationError, HeraldError


class SuiteError(ConfigurationError):
    code = "invalid_suite"


class TargetError(HeraldError):
    code = "invalid_target"
    status = 400


class TargetUnreachable(BackendError):
    code = "target_unreachable"


class ItemError(HeraldError):
    """An item could not be scored by an engine; the runner records it and counts it."""

    code = "item_error"
    status = 422


class EvaluationItemsFailed(HeraldError):
    """Every item of an evaluation failed, so it has no score (raised where a score is needed:
    the in-training evaluation of a fine-tune)."""

    code = "evaluation_items_failed"
    status = 422
