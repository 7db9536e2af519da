"""Retrieval-augmented generation: collections, ingestion, chunking, embeddings, vector stores
and retrieval. Importing this package is cheap; numpy, usearch and models load on first use.

    from herald.rag import retrieve
    chunks = retrieve("handbook", "how many vacation days?", k=5, mode="hybrid")
"""

from herald.rag.collections import Collection, DocumentInfo
from herald.rag.errors import (
    CollectionExists,
    CollectionNotFound,
    DimensionMismatch,
    DocumentError,
    InvalidFilter,
    RagError,
)
from herald.rag.retrieval import RetrievedChunk, retrieve
from herald.rag.service import RagService

__all__ = [
    "Collection",
    "CollectionExists",
    "CollectionNotFound",
    "DimensionMismatch",
    "DocumentError",
    "DocumentInfo",
    "InvalidFilter",
    "RagError",
    "RagService",
    "RetrievedChunk",
    "retrieve",
]
