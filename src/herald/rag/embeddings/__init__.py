"""Embedding models behind one port, chosen by model reference."""

from herald.rag.embeddings.base import Embedder, approx_tokens, open_embedder

__all__ = ["Embedder", "approx_tokens", "open_embedder"]
