"""Vector stores behind one port, chosen by URL scheme."""

from herald.rag.vectorstores.base import (
    Chunk,
    Hit,
    VectorStore,
    close_cached_stores,
    open_vector_store,
)

__all__ = ["Chunk", "Hit", "VectorStore", "close_cached_stores", "open_vector_store"]
