"""Serving backends by name (the serving-backend port of :mod:`herald.adapters`); third
parties add theirs through the ``herald.serving_backends`` entry-point group (``name =
"package.module:BackendClass"``). Modules import lazily, so heavy libraries (torch, llama_cpp,
vllm) load only when a model of that backend is first used."""

from __future__ import annotations

from typing import Any

from herald.adapters import Adapters
from herald.serving.backends.base import Backend

BUILTIN_BACKENDS: dict[str, str] = {
    "fake": "herald.serving.backends.fake:FakeBackend",
    "transformers": "herald.serving.backends.transformers:TransformersBackend",
    "llamacpp": "herald.serving.backends.llamacpp:LlamaCppBackend",
    "embeddings": "herald.serving.backends.embeddings:SentenceTransformersBackend",
    "openai": "herald.serving.backends.openai_proxy:OpenAIProxyBackend",
    "vllm": "herald.serving.backends.vllm:VLLMBackend",
}

_SERVE = 'pip install "herald[serve]"'
BACKENDS: Adapters[type[Backend]] = Adapters(
    "serving backend",
    "herald.serving_backends",
    BUILTIN_BACKENDS,
    check=lambda cls: isinstance(cls, type) and issubclass(cls, Backend),
    install_hint={name: _SERVE for name in BUILTIN_BACKENDS}
    | {"vllm": f'{_SERVE} or "herald[vllm]"'},
)


def register_backend(name: str, target: str) -> None:
    """Register ``"module:Class"`` under ``name`` (plugins and tests)."""
    BACKENDS.register(name, target)


def known_backends() -> dict[str, str]:
    return {name: str(target) for name, target in BACKENDS.targets().items()}


def backend_class(name: str) -> type[Backend]:
    return BACKENDS.load(name)


def create_backend(name: str, model: str, **options: Any) -> Backend:
    return backend_class(name)(model, **options)
