"""Sentence embeddings with sentence-transformers (e.g. the bundled all-MiniLM-L6-v2).

The model loads from a local folder only (``HF_HUB_OFFLINE=1`` is set for the load, and
``local_files_only``), safetensors weights, ``trust_remote_code`` off unless asked. Token-id
inputs are decoded with the model's own tokenizer (ids outside its vocabulary get a 400).
Options: ``normalize`` (True), ``batch_size`` (32), ``threads``, ``device``, ``max_inputs``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from herald.serving.backends.base import Backend, Capability, Embeddings
from herald.serving.errors import BadParameter


class SentenceTransformersBackend(Backend):
    name = "embeddings"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"embeddings"})
    max_concurrency = 4

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        self.normalize = bool(options.get("normalize", True))
        self.batch_size = int(options.get("batch_size", 32))
        self._lock = threading.Lock()
        self.st: Any = None

    async def load(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        if self.options.get("threads"):
            torch.set_num_threads(int(self.options["threads"]))
        self.st = SentenceTransformer(
            self.model,
            device=self.options.get("device") or "cpu",
            trust_remote_code=bool(self.options.get("trust_remote_code", False)),
            local_files_only=True,
            model_kwargs={"use_safetensors": True},
        )
        self.context_length = int(self.st.max_seq_length or 512)

    async def close(self) -> None:
        self.st = None

    async def health(self) -> bool:
        return self.st is not None

    def describe(self) -> dict[str, Any]:
        dim = None
        if self.st is not None:  # sentence-transformers 5 renamed the getter (a FutureWarning)
            getter = getattr(self.st, "get_embedding_dimension", None)
            dim = (getter or self.st.get_sentence_embedding_dimension)()
        return {**super().describe(), "dimensions": dim}

    def tokenize(self, text: str) -> list[int]:
        return list(self.st.tokenizer(text, add_special_tokens=True)["input_ids"])

    async def embed(self, inputs: Sequence[str | list[int]]) -> Embeddings:
        texts: list[str] = []
        tok = self.st.tokenizer
        vocab = len(tok)
        for i, item in enumerate(inputs):
            if isinstance(item, str):
                texts.append(item)
                continue
            bad = [t for t in item if not 0 <= t < vocab]
            if bad:
                raise BadParameter(
                    f"token id {bad[0]} in input[{i}] is outside this model's vocabulary "
                    f"(0..{vocab - 1}); token-id input must use {self.model}'s tokenizer",
                    param=f"input[{i}]",
                )
            texts.append(tok.decode(item, skip_special_tokens=True))
        return await asyncio.to_thread(self._embed, texts)

    def _embed(self, texts: list[str]) -> Embeddings:
        with self._lock:
            tokens = sum(
                min(len(ids), self.context_length)
                for ids in self.st.tokenizer(texts, add_special_tokens=True)["input_ids"]
            )
            vecs = self.st.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=self.normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return Embeddings([[float(x) for x in v] for v in vecs], tokens)
