"""Errors of the OpenAI-compatible data plane, rendered as OpenAI error objects::

HeraldError
└── ServingError                 {"error": {"message", "type", "param", "code"}}
    ├── BadParameter             400 invalid_request_error (param names the field)
    ├── CapabilityNotSupported   400 the model cannot do this (embeddings on a chat model...)
    ├── ModelNotFound            404 model_not_found
    ├── Overloaded               429 (Retry-After) the model's queue is full
    └── ModelUnavailable         503 the backend failed to load or crashed
"""

from __future__ import annotations

from typing import Any

from herald.errors import HeraldError


class ServingError(HeraldError):
    code = "serving_error"
    status = 500
    type = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message, details=details)
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The OpenAI error object."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class BadParameter(ServingError):
    code = "invalid_parameter"
    status = 400
    type = "invalid_request_error"


class CapabilityNotSupported(BadParameter):
    code = "unsupported_for_model"


class ModelNotFound(ServingError):
    code = "model_not_found"
    status = 404
    type = "invalid_request_error"


class Overloaded(ServingError):
    code = "overloaded"
    status = 429
    type = "rate_limit_error"


class ModelUnavailable(ServingError):
    code = "model_unavailable"
    status = 503
    type = "server_error"
