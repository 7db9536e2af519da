"""Any OpenAI-compatible ``/v1/embeddings`` endpoint (Herald's own gateway, vLLM, OpenAI…).

openai:all-minilm-l6-v2@http://127.0.0.1:8700/v1
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import httpx

from herald.errors import BackendError, ConfigurationError
from herald.rag.embeddings.base import Embedder, batched
from herald.security import egress as egress_mod
from herald.settings import RagSettings


class OpenAIEmbedder(Embedder):
    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"embedding endpoint {base_url!r} must be an http(s) URL")
        self.model = model
        self.ref = f"openai:{model}@{base_url}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=timeout_s,
            transport=transport,
        )
        self.batch_size = batch_size
        self.dimension = len(self._call(["dimension probe"])[0])

    def _call(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            r = self._http.post("embeddings", json={"model": self.model, "input": list(texts)})
        except httpx.HTTPError as exc:
            raise BackendError(f"embedding endpoint {self._http.base_url}: {exc}") from exc
        if r.status_code != 200:
            try:
                detail: Any = r.json().get("error", {}).get("message", r.text)
            except ValueError:
                detail = r.text
            raise BackendError(
                f"embedding endpoint {self._http.base_url} answered {r.status_code}: {detail}"
            )
        data = sorted(r.json()["data"], key=lambda d: d["index"])
        if len(data) != len(texts):
            raise BackendError(f"embedding endpoint returned {len(data)} vectors for {len(texts)}")
        out = []
        for d in data:
            v = [float(x) for x in d["embedding"]]
            n = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / n for x in v])
        return out

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for part in batched(texts, self.batch_size):
            out.extend(self._call(part))
        return out


def from_ref(
    rest: str, settings: RagSettings, *, egress: egress_mod.EgressPolicy | None = None
) -> Embedder:
    model, sep, base_url = rest.rpartition("@")
    if not sep or not model or not base_url:
        raise ConfigurationError(
            f"openai embedding reference needs openai:<model>@<base url>, got openai:{rest}"
        )
    if f"openai:{rest}" == settings.embedding_model.strip():  # the operator's own embedder
        return OpenAIEmbedder(
            model,
            base_url,
            api_key=settings.embeddings_api_key,
            batch_size=settings.embedding_batch_size,
        )
    # a caller-named endpoint: the egress policy on every connection, and no operator key
    # (rag.embeddings_api_key belongs to the operator's embedder; see security.secrets)
    policy = egress or egress_mod.EgressPolicy()
    egress_mod.check_url(base_url, policy)
    return OpenAIEmbedder(
        model,
        base_url,
        batch_size=settings.embedding_batch_size,
        transport=egress_mod.EgressTransport(policy),
    )
