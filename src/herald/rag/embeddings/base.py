"""The embedding port and its registry of model references.

    all-minilm-l6-v2                         bundled sentence-transformers model (offline)
    sentence-transformers:<folder|hub id>    any sentence-transformers model (HF_HUB_OFFLINE=1)
    openai:<model>@<base url>                any OpenAI-compatible /v1/embeddings endpoint
    hash:<dimension>                         deterministic feature hashing (tests, no model)

Third parties add prefixes through the ``herald.embedders`` entry-point group: a callable
``(ref_rest: str, settings: RagSettings) -> Embedder``.
"""

from __future__ import annotations

import inspect
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from herald.adapters import Adapters
from herald.errors import ConfigurationError
from herald.security.egress import EgressPolicy
from herald.settings import BUNDLED_EMBEDDER, RagSettings

_WORDPIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def approx_tokens(text: str) -> int:
    """A model-free token estimate: words and punctuation marks."""
    return len(_WORDPIECE.findall(text))


class Embedder(ABC):
    """Turns texts into fixed-length vectors (unit length for cosine search)."""

    ref: str = ""
    dimension: int = 0
    max_tokens: int | None = None  # longest input the model reads; chunks are sized below it

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, batched internally."""

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query (models with query prefixes override this)."""
        return self.embed([text])[0]

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model (chunk sizing)."""
        return approx_tokens(text)


Factory = Callable[[str, RagSettings], Embedder]
_PREFIXES: dict[str, str] = {
    "sentence-transformers": "herald.rag.embeddings.sentence_transformers:from_ref",
    "openai": "herald.rag.embeddings.openai:from_ref",
    "hash": "herald.rag.embeddings.hashing:from_ref",
}
_cache: dict[tuple[str, EgressPolicy], Embedder] = {}
_lock = threading.Lock()


EMBEDDERS: Adapters[Factory] = Adapters("embedder", "herald.embedders", _PREFIXES, check=callable)


def _factory(prefix: str) -> Factory | None:
    return EMBEDDERS.load(prefix) if prefix in EMBEDDERS else None


def normalise_ref(ref: str) -> str:
    ref = ref.strip()
    return f"sentence-transformers:{BUNDLED_EMBEDDER}" if ref.lower() == BUNDLED_EMBEDDER else ref


def open_embedder(
    ref: str, settings: RagSettings | None = None, *, egress: EgressPolicy | None = None
) -> Embedder:
    """The embedder for a model reference; one shared instance per reference, egress policy
    and process. ``egress`` is the policy a caller-named endpoint is held to (the strict default
    without one); factories that take an ``egress`` keyword get it."""
    key = normalise_ref(ref)
    policy = egress or EgressPolicy()
    with _lock:
        hit = _cache.get((key, policy))
    if hit is not None:
        return hit
    prefix, sep, rest = key.partition(":")
    factory = _factory(prefix) if sep else None
    if factory is None:
        raise ConfigurationError(
            f"unknown embedding model {ref!r}; use {BUNDLED_EMBEDDER}, "
            "sentence-transformers:<folder|hub id>, openai:<model>@<base url> or hash:<dim>"
        )
    takes_egress = "egress" in inspect.signature(factory).parameters
    rs = settings or RagSettings()
    embedder = factory(rest, rs, egress=policy) if takes_egress else factory(rest, rs)  # type: ignore[call-arg]
    with _lock:
        return _cache.setdefault((key, policy), embedder)


def batched(texts: Sequence[str], size: int) -> list[Sequence[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]
