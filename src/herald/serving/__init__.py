"""The OpenAI-compatible data plane: one folder per endpoint (router / protocol / service),
model backends behind one port (``backends/``), and the pool that maps public model names to
loaded backends (``pool.py``). See docs/guides/serving.md."""

from herald.serving.errors import (
    BadParameter,
    CapabilityNotSupported,
    ModelNotFound,
    ModelUnavailable,
    Overloaded,
    ServingError,
)
from herald.serving.hooks import Hooks, RequestContext, RequestRecord
from herald.serving.pool import ModelPool, ModelSpec, Replica

__all__ = [
    "BadParameter",
    "CapabilityNotSupported",
    "Hooks",
    "ModelNotFound",
    "ModelPool",
    "ModelSpec",
    "ModelUnavailable",
    "Overloaded",
    "Replica",
    "RequestContext",
    "RequestRecord",
    "ServingError",
]
