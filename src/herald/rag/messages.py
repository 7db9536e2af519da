"""Message types of RAG collections and documents.

Requests (a user, the API or a sensor publishes them; a built-in sensor runs the job):

- ``documents.ingest.requested`` → ``rag.ingest`` job → ``documents.ingested``
- ``documents.delete.requested`` → ``documents.deleted``
- ``collection.reindex.requested`` → ``rag.reindex`` job → ``collection.reindexed``

Facts the API emits for lineage: ``collection.created``, ``collection.deleted``.
Payloads stay under 64 KiB: per-file reports are truncated (``items_truncated``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from herald.messages.base import Message

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class CollectionCreated(Message, type="collection.created"):
    """A collection exists with this embedding model and chunking config."""

    name: str
    embedding_model: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    store_url: str


class CollectionDeleted(Message, type="collection.deleted"):
    """A collection and all its chunks were removed."""

    name: str


class CollectionReindexRequested(Message, type="collection.reindex.requested"):
    """Re-embed every chunk of a collection (optionally with a different embedding model)."""

    collection: str = Field(pattern=NAME)
    embedding_model: str | None = Field(
        None, description="new embedding model; default: the collection's current one"
    )


class CollectionReindexed(Message, type="collection.reindexed"):
    """A collection was re-embedded."""

    collection: str
    embedding_model: str
    dimension: int
    chunks: int
    job_id: str | None = None


class DocumentsIngestRequested(Message, type="documents.ingest.requested"):
    """Ingest a file, a folder or an fsspec URL into a collection."""

    collection: str = Field(pattern=NAME)
    source: str = Field(min_length=1, description="local path or fsspec URL (file or folder)")
    metadata: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="custom fields added to every chunk (filterable)"
    )
    redact_pii: bool = False
    recursive: bool = True
    force: bool = Field(False, description="re-embed even unchanged files")
    prune: bool = Field(
        False, description="delete documents under this source that are no longer there"
    )
    ref_doc_id: str | None = Field(None, description="document id (single file only)")


class DocumentsIngested(Message, type="documents.ingested"):
    """An ingestion finished; per-file outcomes in ``items`` (failures listed first)."""

    collection: str
    source: str
    files: int
    documents: int
    chunks: int
    counts: dict[str, int] = Field(default_factory=dict)
    pii: dict[str, int] = Field(default_factory=dict)
    deleted: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    items: list[dict[str, Any]] = Field(default_factory=list)
    items_truncated: int = 0
    job_id: str | None = None


class DocumentsDeleteRequested(Message, type="documents.delete.requested"):
    """Delete documents (all their chunks) from a collection."""

    collection: str = Field(pattern=NAME)
    ref_doc_ids: list[str] = Field(min_length=1, max_length=1000)


class DocumentsDeleted(Message, type="documents.deleted"):
    """Documents and their chunks were removed."""

    collection: str
    ref_doc_ids: list[str]
    documents: int
    chunks: int


RAG_MESSAGES = (
    CollectionCreated,
    CollectionDeleted,
    CollectionReindexRequested,
    CollectionReindexed,
    DocumentsIngestRequested,
    DocumentsIngested,
    DocumentsDeleteRequested,
    DocumentsDeleted,
)
