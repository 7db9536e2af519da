"""Feature-hashing embedder: word unigrams and bigrams hashed into ``dimension`` signed buckets.

Deterministic, instant and model-free; texts sharing words get similar vectors. Used by tests
and demos that must not load a neural model (like the fake LLM backend of the gateway).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Sequence

from herald.errors import ConfigurationError
from herald.rag.embeddings.base import Embedder
from herald.settings import RagSettings

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder(Embedder):
    def __init__(self, dimension: int = 256) -> None:
        if not 2 <= dimension <= 65536:
            raise ConfigurationError("hash embedder dimension must be within 2..65536")
        self.dimension = dimension
        self.ref = f"hash:{dimension}"

    def _vector(self, text: str) -> list[float]:
        words = [w.lower() for w in _WORD.findall(text)]
        feats = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        v = [0.0] * self.dimension
        for f in feats:
            h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
            v[h % self.dimension] += 1.0 if (h >> 63) & 1 else -1.0
        n = math.sqrt(sum(x * x for x in v))
        if n == 0:
            v[0], n = 1.0, 1.0
        return [x / n for x in v]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]


def from_ref(rest: str, settings: RagSettings) -> Embedder:
    try:
        return HashingEmbedder(int(rest or 256))
    except ValueError:
        raise ConfigurationError(f"hash:<dimension> needs an integer, got {rest!r}") from None
