"""RAG jobs and the sensors that start them (a built-in plugin; importing it is cheap).

    documents.ingest.requested ──sensor──▶ rag.ingest (job, local executor) ──▶ documents.ingested
    collection.reindex.requested ─sensor─▶ rag.reindex (job)                 ──▶ collection.reindexed
    documents.delete.requested ──sensor──▶ delete (in the sensor)            ──▶ documents.deleted

A request for a missing collection fails the job at once (not retried: it is a 4xx error).
"""

from __future__ import annotations

import json
from typing import Any

from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.rag.messages import (
    CollectionReindexed,
    CollectionReindexRequested,
    DocumentsDeleted,
    DocumentsDeleteRequested,
    DocumentsIngested,
    DocumentsIngestRequested,
)
from herald.security.files import FilePolicy
from herald.sensors.base import SensorContext, sensor
from herald.services import Services

INGEST_JOB = "rag.ingest"
REINDEX_JOB = "rag.reindex"
MAX_ITEMS_BYTES = 48 * 1024


def ingested_message(report: Any, job_id: str | None) -> DocumentsIngested:
    """``documents.ingested`` from an :class:`IngestReport`, trimmed to fit 64 KiB."""
    order = {"failed": 0, "refused": 1, "empty": 2, "unsupported": 3, "updated": 4, "ingested": 5}
    order["skipped"] = 6
    items = sorted(
        (
            i.model_dump(mode="json", exclude_defaults=True) | {"status": i.status}
            for i in report.items
        ),
        key=lambda d: order.get(d["status"], 9),
    )
    kept: list[dict[str, Any]] = []
    size = 0
    for it in items:
        size += len(json.dumps(it))
        if size > MAX_ITEMS_BYTES:
            break
        kept.append(it)
    deleted = report.deleted[:200]
    return DocumentsIngested(
        collection=report.collection,
        source=report.source,
        files=report.files,
        documents=report.documents,
        chunks=report.chunks,
        counts=report.counts,
        pii=report.pii,
        deleted=deleted,
        duration_s=report.duration_s,
        items=kept,
        items_truncated=len(items) - len(kept),
        job_id=job_id,
    )


@job(name=INGEST_JOB, executor="local", max_attempts=2)
def ingest_documents(
    collection: str,
    source: str,
    metadata: dict[str, str | int | float | bool] | None = None,
    redact_pii: bool = False,
    recursive: bool = True,
    force: bool = False,
    prune: bool = False,
    ref_doc_id: str | None = None,
    ctx: JobContext | None = None,
) -> DocumentsIngested:
    """Load, chunk, embed and store the documents of ``source`` (file, folder or fsspec URL)
    in ``collection``; unchanged files are skipped by content hash."""
    services = Services.of_job(ctx)
    svc = services.rag
    # the same answer as the API edge gave (403 otherwise)
    policy = FilePolicy.from_settings(services.settings)

    def progress(fraction: float, message: str) -> None:
        if ctx is not None:
            ctx.progress(min(1.0, max(0.0, fraction)), message)

    report = svc.ingest(
        collection,
        source,
        metadata=metadata,
        redact_pii=redact_pii,
        recursive=recursive,
        force=force,
        prune=prune,
        ref_doc_id=ref_doc_id,
        progress=progress,
        cancelled=(lambda: ctx.cancelled) if ctx is not None else None,
        policy=policy,
    )
    store = svc.store_for(svc.get_collection(collection))
    flush = getattr(store, "flush", None)
    if callable(flush):
        flush()  # leave an index snapshot so other processes start fast
    return ingested_message(report, ctx.job_id if ctx is not None else None)


@job(name=REINDEX_JOB, executor="local", max_attempts=1)
def reindex_collection(
    collection: str, embedding_model: str | None = None, ctx: JobContext | None = None
) -> CollectionReindexed:
    """Re-embed every chunk of ``collection`` with ``embedding_model`` (default: its own)."""
    svc = Services.of_job(ctx).rag
    col = svc.reindex(
        collection,
        embedding_model=embedding_model,
        progress=(lambda f, m: ctx.progress(f, m)) if ctx is not None else None,
    )
    return CollectionReindexed(
        collection=col.name,
        embedding_model=col.embedding_model,
        dimension=col.dimension,
        chunks=col.chunks,
        job_id=ctx.job_id if ctx is not None else None,
    )


@sensor(on=DocumentsIngestRequested, name="rag.ingest")
def on_ingest_requested(msg: DocumentsIngestRequested, ctx: SensorContext) -> None:
    """Run the ``rag.ingest`` job for a ``documents.ingest.requested`` message."""
    params = {k: v for k, v in msg.payload().items() if v is not None}
    ctx.run_job(INGEST_JOB, params)


@sensor(on=CollectionReindexRequested, name="rag.reindex")
def on_reindex_requested(msg: CollectionReindexRequested, ctx: SensorContext) -> None:
    """Run the ``rag.reindex`` job for a ``collection.reindex.requested`` message."""
    params = {k: v for k, v in msg.payload().items() if v is not None}
    ctx.run_job(REINDEX_JOB, params)


@sensor(on=DocumentsDeleteRequested, name="rag.delete")
def on_delete_requested(msg: DocumentsDeleteRequested, ctx: SensorContext) -> DocumentsDeleted:
    """Delete the documents at once (fast, idempotent) and report ``documents.deleted``."""
    counts = Services.of_sensor(ctx).rag.delete_documents(msg.collection, msg.ref_doc_ids)
    return DocumentsDeleted(
        collection=msg.collection,
        ref_doc_ids=msg.ref_doc_ids,
        documents=counts["documents"],
        chunks=counts["chunks"],
    )
