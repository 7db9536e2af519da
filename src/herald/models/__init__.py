"""Model sources: registry names and URIs, local folders, hub ids (offline) and bundled GGUFs.

>>> source = resolve_model("smollm2-135m-instruct")     # doctest: +SKIP
>>> model, tokenizer = load_causal_lm(source)           # doctest: +SKIP

Importing this package is cheap: torch and transformers load inside the functions that need them.
"""

from herald.models.bundled import (
    BUNDLED,
    bundled_gguf,
    ensure_converted,
    register_bundled_models,
)
from herald.models.errors import ModelNotFound, ModelSourceError
from herald.models.loading import ensure_local, load_causal_lm, load_tokenizer
from herald.models.resolve import resolve_model
from herald.models.source import ModelSource

__all__ = [
    "BUNDLED",
    "ModelNotFound",
    "ModelSource",
    "ModelSourceError",
    "bundled_gguf",
    "ensure_converted",
    "ensure_local",
    "load_causal_lm",
    "load_tokenizer",
    "register_bundled_models",
    "resolve_model",
]
