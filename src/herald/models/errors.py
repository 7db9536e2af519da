"""Errors of model sources (see ``herald.errors`` for the whole tree).

HeraldError
└── ModelSourceError      a model reference cannot be resolved or loaded (422)
    └── ModelNotFound     nothing matches the reference (404)
"""

from __future__ import annotations

from herald.errors import HeraldError, NotFound


class ModelSourceError(HeraldError):
    """A model reference cannot be resolved or its files cannot be loaded."""

    code = "invalid_model"
    status = 422


class ModelNotFound(ModelSourceError, NotFound):
    """No registered model, local folder, cached hub model or bundled model matches."""

    code = "model_not_found"
    status = 404
