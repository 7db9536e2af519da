"""``GET /v1/models``: configured, bundled and loaded models; adapters carry ``parent``."""

from __future__ import annotations

import time

from herald.serving.models.protocol import ModelCard, ModelList
from herald.serving.pool import ModelPool, ModelSpec

_STARTED = int(time.time())


class ModelsService:
    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool

    def _card(self, spec: ModelSpec) -> ModelCard:
        loaded = {r.spec.name: r for r in self.pool.loaded()}
        rep = loaded.get(spec.name)
        return ModelCard(
            id=spec.name,
            created=rep.created if rep else _STARTED,
            owned_by="herald",
            root=spec.version or spec.model,
            parent=spec.parent,
            max_model_len=rep.backend.context_length if rep else None,
        )

    def list(self) -> ModelList:
        return ModelList(data=[self._card(s) for s in self.pool.listed()])

    async def get(self, model: str) -> ModelCard:
        for spec in self.pool.listed():
            if spec.name == model:
                return self._card(spec)
        return self._card(await self.pool.spec_for(model))  # registry versions; else 404
