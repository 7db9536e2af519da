"""Serving backends by name; third parties add theirs through the ``herald.serving_backends``
entry-point group (``name = "package.module:BackendClass"``). Modules import lazily, so heavy
libraries (torch, llama_cpp, vllm) load only when a model of that backend is first used."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from herald.errors import BackendUnavailable, ConfigurationError
from herald.serving.backends.base import Backend

BUILTIN_BACKENDS: dict[str, str] = {
    "fake": "herald.serving.backends.fake:FakeBackend",
    "transformers": "herald.serving.backends.transformers:TransformersBackend",
    "llamacpp": "herald.serving.backends.llamacpp:LlamaCppBackend",
    "embeddings": "herald.serving.backends.embeddings:SentenceTransformersBackend",
    "openai": "herald.serving.backends.openai_proxy:OpenAIProxyBackend",
    "vllm": "herald.serving.backends.vllm:VLLMBackend",
}

_extra: dict[str, str] = {}


def register_backend(name: str, target: str) -> None:
    """Register ``"module:Class"`` under ``name`` (plugins and tests)."""
    _extra[name] = target


def known_backends() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group="herald.serving_backends")}
    return {**found, **BUILTIN_BACKENDS, **_extra}


def backend_class(name: str) -> type[Backend]:
    known = known_backends()
    if name not in known:
        raise ConfigurationError(
            f"unknown serving backend {name!r} (known: {', '.join(sorted(known))})"
        )
    module, _, attr = known[name].partition(":")
    try:
        cls: Any = getattr(import_module(module), attr)
    except ImportError as exc:
        raise BackendUnavailable(
            f"serving backend {name!r} needs a missing package ({exc.name}): "
            f'pip install "herald[serve]"' + (' or "herald[vllm]"' if name == "vllm" else "")
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigurationError(f"{known[name]} is not a herald serving Backend")
    return cls


def create_backend(name: str, model: str, **options: Any) -> Backend:
    return backend_class(name)(model, **options)
