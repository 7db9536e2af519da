"""The RAG service: collections, ingestion, deletion and retrieval over one catalog.

A running Herald keeps one (``services.rag``, built from its settings on first use): the REST
routes, the chains and the sensors use it, a job reaches it as ``ctx.services.rag`` (a job in
its own process gets one from that process's settings). They share the same store and catalog
URLs, so what one writes the others see on their next query. Embedders and vector stores are
cached per process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald.rag.collections import Catalog, Collection, DocumentInfo, check_name
from herald.rag.embeddings.base import Embedder, normalise_ref, open_embedder
from herald.rag.errors import DimensionMismatch, RagError
from herald.rag.ingest.pipeline import Ingestor, IngestReport, Progress
from herald.rag.settings import default_catalog_url, default_store_url
from herald.rag.vectorstores.base import Chunk, VectorStore, open_vector_store
from herald.security import egress
from herald.security.files import FilePolicy
from herald.security.pii import PIIPolicy
from herald.settings import RagSettings


def default_urls(rs: RagSettings, home: Path, database_url: str | None) -> tuple[str, str]:
    """(vector store URL, catalog URL): the settings', else — when Herald runs on PostgreSQL,
    whose roles do not share a HERALD_HOME — that database (pgvector), else files in ``home``."""
    from herald.store.shared import is_postgres

    shared = database_url if database_url and is_postgres(database_url) else None
    return (
        rs.store_url or shared or default_store_url(home),
        rs.catalog_url or shared or default_catalog_url(home),
    )


class RagService:
    def __init__(
        self,
        settings: RagSettings,
        *,
        home: Path,
        database_url: str | None = None,
        egress_policy: egress.EgressPolicy | None = None,
        pii_policy: PIIPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.home = home
        # the operator's security.egress and security.pii (the strict defaults without them)
        self.egress = egress_policy or egress.EgressPolicy()
        self.pii = pii_policy or PIIPolicy()
        self.store_url, catalog_url = default_urls(settings, home, database_url)
        self.catalog = Catalog(catalog_url)
        self._reranker: Any = None

    @classmethod
    def from_settings(cls, settings: Any) -> RagService:
        """The service of Herald ``settings`` (its ``rag`` section, home and database); the
        caller closes it (a Herald keeps one as ``services.rag``)."""
        database_url = getattr(settings, "resolved_database_url", None)
        return cls(
            settings.rag,
            home=Path(settings.home),
            database_url=database_url,
            egress_policy=egress.EgressPolicy.of(settings),
            pii_policy=PIIPolicy.from_settings(settings),
        )

    def close(self) -> None:
        """Release the catalog's connections and the reranker's client."""
        self.catalog.close()
        if self._reranker is not None:
            self._reranker.close()

    @classmethod
    def reset(cls) -> None:
        """Close the vector stores this process keeps open (tests)."""
        from herald.rag.vectorstores.base import close_cached_stores

        close_cached_stores()

    # plumbing -------------------------------------------------------------------------------
    def store_for(self, collection: Collection) -> VectorStore:
        return open_vector_store(collection.store_url)

    def embedder_for(self, collection: Collection) -> Embedder:
        e = open_embedder(collection.embedding_model, self.settings, egress=self.egress)
        if e.dimension != collection.dimension:
            raise DimensionMismatch(
                f"embedding model {collection.embedding_model!r} now gives {e.dimension}-"
                f"dimensional vectors but collection {collection.name!r} stores "
                f"{collection.dimension}; re-index it (collection.reindex.requested)"
            )
        return e

    def _check_embedder(self, ref: str) -> None:
        """A caller-named ``openai:<model>@<url>`` embedder obeys the egress policy (403);
        the operator's ``rag.embedding_model`` is trusted."""
        url = egress.embedder_url(ref)
        if url and ref != normalise_ref(self.settings.embedding_model):
            egress.check_url(url, self.egress)

    # collections ----------------------------------------------------------------------------
    def create_collection(
        self,
        name: str,
        *,
        embedding_model: str | None = None,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        description: str = "",
        store_url: str | None = None,
    ) -> Collection:
        check_name(name)
        model = normalise_ref(embedding_model or self.settings.embedding_model)
        self._check_embedder(model)
        size = chunk_size or self.settings.chunk_size
        overlap = self.settings.chunk_overlap if chunk_overlap is None else chunk_overlap
        _check_chunking(size, overlap)
        if any(c.name == name for c in self.catalog.all()):
            from herald.rag.errors import CollectionExists

            raise CollectionExists(f"collection {name!r} already exists")
        embedder = open_embedder(model, self.settings, egress=self.egress)
        url = store_url or self.store_url
        store = open_vector_store(url)
        store.drop(name)  # leftovers of a collection deleted from the catalog only
        store.create(name, embedder.dimension)
        now = datetime.now(UTC)
        return self.catalog.add(
            Collection(
                name=name,
                embedding_model=model
                if model != "sentence-transformers:all-minilm-l6-v2"
                else "all-minilm-l6-v2",
                dimension=embedder.dimension,
                chunk_size=size,
                chunk_overlap=overlap,
                store_url=url,
                description=description,
                created_at=now,
                updated_at=now,
            )
        )

    def get_collection(self, name: str) -> Collection:
        return self.catalog.get(check_name(name))

    def list_collections(self) -> list[Collection]:
        return self.catalog.all()

    def delete_collection(self, name: str) -> None:
        col = self.get_collection(name)
        open_vector_store(col.store_url).drop(name)
        self.catalog.remove(name)

    # documents ------------------------------------------------------------------------------
    def ingest(
        self,
        collection: str,
        source: str,
        *,
        metadata: dict[str, Any] | None = None,
        redact_pii: bool = False,
        recursive: bool = True,
        force: bool = False,
        prune: bool = False,
        ref_doc_id: str | None = None,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
        policy: FilePolicy | None = None,
    ) -> IngestReport:
        """Ingest ``source``; with ``policy`` (caller-named sources) it must be allowed."""
        col = self.get_collection(collection)
        return Ingestor(
            self,
            col,
            metadata=metadata,
            redact_pii=redact_pii,
            force=force,
            progress=progress,
            cancelled=cancelled,
            policy=policy,
        ).run(source, recursive=recursive, ref_doc_id=ref_doc_id, prune=prune)

    def documents(
        self,
        collection: str,
        *,
        limit: int = 1000,
        offset: int = 0,
        source_prefix: str | None = None,
    ) -> list[DocumentInfo]:
        self.get_collection(collection)
        return self.catalog.documents(
            collection, limit=limit, offset=offset, source_prefix=source_prefix
        )

    def delete_documents(self, collection: str, ref_doc_ids: Sequence[str]) -> dict[str, int]:
        """Remove the documents and all their chunks; ``{"documents": n, "chunks": m}``."""
        col = self.get_collection(collection)
        chunks = open_vector_store(col.store_url).delete(collection, list(ref_doc_ids))
        docs = self.catalog.remove_documents(collection, list(ref_doc_ids))
        return {"documents": docs, "chunks": chunks}

    # re-indexing ----------------------------------------------------------------------------
    def reindex(
        self,
        collection: str,
        *,
        embedding_model: str | None = None,
        progress: Progress | None = None,
    ) -> Collection:
        """Re-embed every stored chunk with ``embedding_model`` (default: the current one).

        The chunks are read first, the store collection is recreated with the new dimension and
        written in batches; the catalog then records the new model."""
        col = self.get_collection(collection)
        model = normalise_ref(embedding_model or col.embedding_model)
        self._check_embedder(model)
        embedder = open_embedder(model, self.settings, egress=self.egress)
        store = open_vector_store(col.store_url)
        chunks = list(store.scan(collection))
        report = progress or (lambda f, m: None)
        report(0.05, f"read {len(chunks)} chunks")
        self.catalog.update(collection, status="reindexing")
        vectors: list[list[float]] = []
        for start in range(0, len(chunks), 256):
            part = chunks[start : start + 256]
            vectors.extend(embedder.embed([c.text for c in part]))
            report(0.05 + 0.8 * (start + len(part)) / max(1, len(chunks)), "embedding")
        store.drop(collection)
        store.create(collection, embedder.dimension)
        fresh = [
            Chunk(c.id, c.ref_doc_id, c.text, v, c.metadata)
            for c, v in zip(chunks, vectors, strict=True)
        ]
        for start in range(0, len(fresh), 512):
            store.write(collection, fresh[start : start + 512])
        stored = "all-minilm-l6-v2" if model == "sentence-transformers:all-minilm-l6-v2" else model
        out = self.catalog.update(
            collection, embedding_model=stored, dimension=embedder.dimension, status="ready"
        )
        report(1.0, f"re-indexed {len(fresh)} chunks with {stored}")
        return out

    # retrieval ------------------------------------------------------------------------------
    def reranker(self) -> Any:
        """The configured served reranker (``HERALD_RAG__RERANK_URL``), created once."""
        if self._reranker is None:
            if not self.settings.rerank_url:
                raise RagError(
                    "no reranker configured: set HERALD_RAG__RERANK_URL to a server with "
                    "/v1/rerank (and HERALD_RAG__RERANK_MODEL)"
                )
            from herald.rag.rerank import HttpReranker

            self._reranker = HttpReranker(
                self.settings.rerank_url,
                self.settings.rerank_model,
                api_key=self.settings.rerank_api_key,
            )
        return self._reranker

    def retrieve(self, collection: str, query: str, **kw: Any) -> list[Any]:
        from herald.rag.retrieval import retrieve

        return retrieve(collection, query, service=self, **kw)


def _check_chunking(size: int, overlap: int) -> None:
    if not 16 <= size <= 8192:
        raise RagError(f"chunk_size must be within 16..8192 tokens, got {size}")
    if not 0 <= overlap <= size // 2:
        raise RagError(f"chunk_overlap must be within 0..{size // 2} (half the chunk size)")
