"""Ingestion: files → documents → (PII redaction) → chunks → embeddings → vector store.

Per file the outcome is one of ``ingested`` (new), ``updated`` (content changed: its chunks
were replaced), ``skipped`` (same content hash and collection config), ``empty``,
``unsupported`` or ``failed``; a bad file never stops the batch. Embedding is batched across
documents; each document's chunks are written with ``replace=[ref_doc_id]`` so re-ingesting an
edited file swaps its chunks atomically.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from herald.errors import HeraldError
from herald.rag.chunking import Chunker
from herald.rag.collections import Collection, DocumentInfo
from herald.rag.errors import DocumentError
from herald.rag.ingest.loaders import Document, loader_for
from herald.rag.ingest.sources import SourceFile, list_sources
from herald.rag.vectorstores.base import Chunk

if TYPE_CHECKING:
    from herald.rag.service import RagService
    from herald.security.files import FilePolicy

Status = Literal["ingested", "updated", "skipped", "empty", "unsupported", "refused", "failed"]
Progress = Callable[[float, str], None]
BATCH_CHUNKS = 128


class FileReport(BaseModel):
    source: str
    status: Status
    documents: int = 0
    chunks: int = 0
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)


class IngestReport(BaseModel):
    collection: str
    source: str
    files: int = 0
    documents: int = 0
    chunks: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    pii: dict[str, int] = Field(default_factory=dict)
    deleted: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    items: list[FileReport] = Field(default_factory=list)

    def summary(self) -> str:
        parts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items()))
        return f"{self.files} files ({parts}); {self.documents} documents, {self.chunks} chunks"


def chunk_id(ref_doc_id: str, index: int) -> str:
    return f"{hashlib.sha1(ref_doc_id.encode(), usedforsecurity=False).hexdigest()[:20]}:{index}"


@dataclass
class _Pending:
    doc: Document
    report: FileReport
    updated: bool
    texts: list[str] = field(default_factory=list)  # what gets embedded
    chunks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Ingestor:
    def __init__(
        self,
        service: RagService,
        collection: Collection,
        *,
        metadata: dict[str, Any] | None = None,
        redact_pii: bool = False,
        force: bool = False,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
        policy: FilePolicy | None = None,
    ) -> None:
        self.service = service
        self.policy = policy
        self.col = collection
        self.store = service.store_for(collection)
        self.embedder = service.embedder_for(collection)
        size = collection.chunk_size
        if self.embedder.max_tokens:
            size = min(size, self.embedder.max_tokens)
        self.chunker = Chunker(
            size, min(collection.chunk_overlap, size // 2), self.embedder.count_tokens
        )
        self.metadata = {
            k: v for k, v in (metadata or {}).items() if isinstance(v, str | int | float | bool)
        }
        self.pii_policy = service.pii  # security.pii: kinds, redact_ingest
        self.redact_pii = redact_pii or self.pii_policy.redact_ingest
        self.force = force
        self.progress = progress or (lambda f, m: None)
        self.cancelled = cancelled or (lambda: False)
        self.pii: Counter[str] = Counter()
        self._pending: list[_Pending] = []

    def run(
        self,
        source: str,
        *,
        recursive: bool = True,
        ref_doc_id: str | None = None,
        prune: bool = False,
    ) -> IngestReport:
        started = time.monotonic()
        requested = source
        if self.policy is not None:  # a caller-named source: checked, then read as resolved
            source = self.policy.source(source, purpose="source")
        files = list_sources(
            source, recursive=recursive, policy=self.policy, egress_policy=self.service.egress
        )
        if ref_doc_id is not None and len(files) != 1:
            raise DocumentError("ref_doc_id can only be given when ingesting a single file")
        report = IngestReport(collection=self.col.name, source=requested, files=len(files))
        seen: set[str] = set()
        for n, f in enumerate(files, 1):
            if self.cancelled():
                raise HeraldError("ingestion cancelled")
            item = self._file(f, ref_doc_id, seen)
            report.items.append(item)
            self.progress(
                0.95 * n / max(1, len(files)), f"{n}/{len(files)} {f.name}: {item.status}"
            )
        self._flush()
        if prune and files:
            root = _source_prefix(source, files)
            stale = [
                d.ref_doc_id
                for d in self.service.catalog.documents(
                    self.col.name, source_prefix=root, limit=10**9
                )
                if d.ref_doc_id not in seen
            ]
            if stale:
                self.service.delete_documents(self.col.name, stale)
                report.deleted = stale
        report.counts = dict(Counter(i.status for i in report.items))
        report.documents = sum(i.documents for i in report.items)
        report.chunks = sum(i.chunks for i in report.items)
        report.pii = dict(self.pii)
        report.duration_s = round(time.monotonic() - started, 3)
        self.progress(1.0, report.summary())
        return report

    def _file(self, f: SourceFile, ref_doc_id: str | None, seen: set[str]) -> FileReport:
        if f.refused is not None:
            return FileReport(source=f.uri, status="refused", error=f.refused)
        loader = loader_for(f.name)
        if loader is None:
            return FileReport(
                source=f.uri,
                status="unsupported",
                error=f"unsupported file type {f.name!r} (supported: .txt .md .html .pdf .jsonl)",
            )
        try:
            docs = loader(f.read(self.service.settings.max_file_bytes, self.service.egress), f.uri)
        except DocumentError as exc:
            empty = "empty" in exc.message or "no extractable text" in exc.message
            if empty:  # a file that became empty no longer has chunks
                self._forget(ref_doc_id or f.uri)
                seen.add(ref_doc_id or f.uri)
            return FileReport(
                source=f.uri, status="empty" if empty else "failed", error=exc.message
            )
        except (OSError, HeraldError) as exc:
            return FileReport(source=f.uri, status="failed", error=f"{f.uri}: {exc}")
        item = FileReport(source=f.uri, status="skipped", documents=len(docs))
        item.warnings = [w for d in docs for w in d.errors][:20]
        for doc in docs:
            if ref_doc_id is not None:
                doc.ref_doc_id = ref_doc_id
            seen.add(doc.ref_doc_id)
            doc.metadata.update(self.metadata)
            if self.redact_pii:  # the same file redacted or not gives different chunks
                doc.content_hash = hashlib.sha256(f"{doc.content_hash}:pii".encode()).hexdigest()
            prior = self.service.catalog.document(self.col.name, doc.ref_doc_id)
            if not self.force and prior == (doc.content_hash, self.col.config_hash):
                continue
            item.status = "updated" if prior is not None else "ingested"
            self._prepare(doc, item, prior is not None)
        return item

    def _forget(self, ref_doc_id: str) -> None:
        if self.service.catalog.document(self.col.name, ref_doc_id) is not None:
            self.service.delete_documents(self.col.name, [ref_doc_id])

    def _prepare(self, doc: Document, item: FileReport, updated: bool) -> None:
        p = _Pending(doc, item, updated)
        title = str(doc.metadata.get("title", ""))
        for text, extra in doc.parts:
            if self.redact_pii:
                text, counts = self.pii_policy.redact(text)
                self.pii.update(counts)
            for c in self.chunker.split(text, markdown=doc.markdown):
                meta = {**doc.metadata, **extra, "ref_doc_id": doc.ref_doc_id}
                meta["chunk_index"] = len(p.chunks)
                if c.section:
                    meta["section"] = c.section
                header = " > ".join(x for x in (title, c.section) if x and x not in c.text[:200])
                p.texts.append(f"{header}\n{c.text}" if header else c.text)
                p.chunks.append((c.text, meta))
        if not p.chunks:
            item.status, item.error = "empty", f"{doc.ref_doc_id}: no text after chunking"
            return
        item.chunks += len(p.chunks)
        self._pending.append(p)
        if sum(len(x.chunks) for x in self._pending) >= BATCH_CHUNKS:
            self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        texts = [t for p in pending for t in p.texts]
        vectors = self.embedder.embed(texts)
        at = 0
        now = datetime.now(UTC)
        for p in pending:
            vecs = vectors[at : at + len(p.chunks)]
            at += len(p.chunks)
            rid = p.doc.ref_doc_id
            chunks = [
                Chunk(chunk_id(rid, i), rid, text, v, meta)
                for i, ((text, meta), v) in enumerate(zip(p.chunks, vecs, strict=True))
            ]
            self.store.write(self.col.name, chunks, replace=[rid])
            self.service.catalog.put_document(
                self.col.name,
                DocumentInfo(
                    ref_doc_id=rid,
                    source=str(p.doc.metadata.get("source", rid)),
                    title=str(p.doc.metadata.get("title", "")),
                    content_hash=p.doc.content_hash,
                    chunks=len(chunks),
                    metadata={k: v for k, v in p.doc.metadata.items() if k != "ref_doc_id"},
                    updated_at=now,
                ),
                self.col.config_hash,
            )


def _source_prefix(source: str, files: list[SourceFile]) -> str:
    """The URI prefix every document ingested from ``source`` starts with."""
    from pathlib import Path

    if "://" in source and not source.startswith("file://"):
        return source if len(files) == 1 and files[0].uri == source else source.rstrip("/") + "/"
    path = Path(source.removeprefix("file://")).expanduser().resolve()
    return path.as_uri() if path.is_file() else path.as_uri().rstrip("/") + "/"
