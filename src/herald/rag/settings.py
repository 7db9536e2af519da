"""RAG settings: ``HERALD_RAG__<FIELD>`` environment variables (or ``rag:`` in herald.yaml once
the main settings tree carries :class:`RagSettings` as its ``rag`` field)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_EMBEDDER = "all-minilm-l6-v2"


class RagSettings(BaseModel):
    """Defaults for collections, ingestion and retrieval."""

    store_url: str | None = Field(
        None,
        description="Vector store URL (local:///folder, postgresql://…, memory://); "
        "default local://$HERALD_HOME/rag/stores.",
    )
    catalog_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the collection/document catalog; "
        "default sqlite:///$HERALD_HOME/rag/catalog.db.",
    )
    embedding_model: str = Field(
        BUNDLED_EMBEDDER,
        description="Default embedding model of new collections: all-minilm-l6-v2 (bundled), "
        "sentence-transformers:<path|hub id>, openai:<model>@<base url>, hash:<dim>.",
    )
    embedding_batch_size: int = Field(32, ge=1, le=4096, description="Texts per embedding call.")
    embedding_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="torch threads for batch embedding (default: torch's); queries use one "
        "thread, which is fastest for a few short texts.",
    )
    embeddings_api_key: str | None = Field(
        None, description="Bearer key for openai:<model>@<url> embedding models."
    )
    rerank_url: str | None = Field(
        None,
        description="Base URL of a served reranker speaking /v1/rerank (vLLM, TEI, Jina); "
        "used by queries with rerank: true.",
    )
    rerank_model: str = Field("reranker", description="Model name sent to the reranker.")
    rerank_api_key: str | None = Field(None, description="Bearer key for the reranker.")
    chunk_size: int = Field(200, ge=16, le=8192, description="Target chunk size in tokens.")
    chunk_overlap: int = Field(32, ge=0, le=4096, description="Tokens shared by neighbours.")
    max_file_bytes: int = Field(
        50 * 1024 * 1024, ge=1, description="Files larger than this are reported and skipped."
    )
    trust_remote_code: bool = Field(
        False, description="Allow custom model code for sentence-transformers models."
    )


class _RagEnv(RagSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HERALD_RAG__", extra="ignore")


def rag_settings(settings: Any = None) -> RagSettings:
    """The ``rag`` section of Herald's settings when present, else ``HERALD_RAG__*`` variables."""
    section = getattr(settings, "rag", None)
    if isinstance(section, RagSettings):
        return section
    return RagSettings.model_validate(_RagEnv().model_dump())


def default_store_url(home: Path) -> str:
    return "local://" + str((home / "rag" / "stores").resolve())


def default_catalog_url(home: Path) -> str:
    return f"sqlite:///{(home / 'rag' / 'catalog.db').resolve()}"
