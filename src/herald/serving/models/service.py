"""``GET /v1/models``: configured, bundled and loaded models; adapters carry ``parent``.

Callers without the admin key see model ids only: a ``root`` or ``parent`` that is a server
path (a bundled GGUF, a converted folder) is replaced by the model's id.
"""

from __future__ import annotations

import time

from herald.security.privilege import redact_paths
from herald.serving.models.protocol import ModelCard, ModelList
from herald.serving.pool import ModelPool, ModelSpec

_STARTED = int(time.time())


class ModelsService:
    def __init__(self, pool: ModelPool, *, reveal_paths: bool = True) -> None:
        self.pool = pool
        self.reveal_paths = reveal_paths  # False for callers without the admin key

    def _public(self, value: str | None, fallback: str | None) -> str | None:
        if value is None or self.reveal_paths or redact_paths(value) == value:
            return value
        return fallback

    def _card(self, spec: ModelSpec) -> ModelCard:
        loaded = {r.spec.name: r for r in self.pool.loaded()}
        rep = loaded.get(spec.name)
        return ModelCard(
            id=spec.name,
            created=rep.created if rep else _STARTED,
            owned_by="herald",
            root=self._public(spec.version or spec.model, spec.name),
            parent=self._public(spec.parent, None),
            max_model_len=rep.backend.context_length if rep else None,
        )

    def list(self) -> ModelList:
        return ModelList(data=[self._card(s) for s in self.pool.listed()])

    async def get(self, model: str) -> ModelCard:
        for spec in self.pool.listed():
            if spec.name == model:
                return self._card(spec)
        return self._card(await self.pool.spec_for(model))  # registry versions; else 404
