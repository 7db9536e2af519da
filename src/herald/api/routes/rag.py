"""REST surface of RAG collections: CRUD, documents, ingestion and queries.

    GET    /v1/collections                          list
    POST   /v1/collections                          create (201; emits collection.created)
    GET    /v1/collections/{name}                   one collection (404 if missing)
    DELETE /v1/collections/{name}                   drop it and its chunks (collection.deleted)
    POST   /v1/collections/{name}/reindex           202: publishes collection.reindex.requested
    GET    /v1/collections/{name}/documents         documents (ref_doc_id, source, hash, chunks)
    POST   /v1/collections/{name}/documents         202: publishes documents.ingest.requested
    DELETE /v1/collections/{name}/documents?ref_doc_id=…   delete now (documents.deleted)
    POST   /v1/collections/{name}/query             dense | keyword | hybrid retrieval

Deletes happen in the request so the very next query no longer sees the chunks; ingestion runs
as a job (the ``rag.ingest`` sensor starts it) and reports ``documents.ingested``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from herald.api.params import Offset
from herald.rag.collections import Collection, check_name
from herald.rag.errors import RagError
from herald.rag.messages import (
    CollectionCreated,
    CollectionDeleted,
    DocumentsDeleted,
)
from herald.rag.service import RagService

if TYPE_CHECKING:
    from herald.bootstrap import Herald

Scalar = str | int | float | bool


class CreateCollection(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    embedding_model: str | None = Field(
        None, description="all-minilm-l6-v2 (default), sentence-transformers:…, openai:…@…, hash:N"
    )
    chunk_size: int | None = Field(None, ge=16, le=8192)
    chunk_overlap: int | None = Field(None, ge=0, le=4096)
    description: str = ""


class IngestBody(BaseModel):
    source: str = Field(
        min_length=1,
        description="file or folder under security.files.allowed_roots, uploads:/ID[/path] "
        "(files sent to /v1/uploads), or an fsspec URL (s3://…)",
    )
    metadata: dict[str, Scalar] = Field(default_factory=dict)
    redact_pii: bool = False
    recursive: bool = True
    force: bool = False
    prune: bool = False
    ref_doc_id: str | None = None
    correlationid: str | None = None


class ReindexBody(BaseModel):
    embedding_model: str | None = None
    correlationid: str | None = None


class QueryBody(BaseModel):
    query: str = Field(min_length=1, max_length=8192)
    k: int = Field(5, ge=1, le=100)
    mode: Literal["dense", "keyword", "hybrid"] = "hybrid"
    filters: dict[str, Any] | None = None
    mmr: bool = False
    mmr_lambda: float = Field(0.5, ge=0.0, le=1.0)
    rerank: bool = Field(False, description="reorder with the served reranker (rerank_url)")


def _col(c: Collection) -> dict[str, Any]:
    return {"object": "collection", **c.model_dump(mode="json")}


def router(h: Herald) -> APIRouter:
    r = APIRouter(tags=["collections"])

    def svc() -> RagService:
        return h.services.rag  # the one the chains, sensors and inline jobs use

    async def run(fn: Any, *args: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kw)

    @r.get("/collections", summary="RAG collections")
    async def list_collections() -> dict[str, Any]:
        cols = await run(svc().list_collections)
        return {"object": "list", "data": [_col(c) for c in cols]}

    @r.post("/collections", status_code=201, summary="Create a collection")
    async def create_collection(body: CreateCollection) -> JSONResponse:
        c = await run(
            svc().create_collection,
            body.name,
            embedding_model=body.embedding_model,
            chunk_size=body.chunk_size,
            chunk_overlap=body.chunk_overlap,
            description=body.description,
        )
        await h.emit(
            CollectionCreated(
                name=c.name,
                embedding_model=c.embedding_model,
                dimension=c.dimension,
                chunk_size=c.chunk_size,
                chunk_overlap=c.chunk_overlap,
                store_url=c.store_url,
            ),
            subject=f"collections/{c.name}",
            source="herald/api",
        )
        return JSONResponse(_col(c), status_code=201)

    @r.get("/collections/{name}", summary="A collection")
    async def get_collection(name: str) -> dict[str, Any]:
        return _col(await run(svc().get_collection, name))

    @r.delete("/collections/{name}", summary="Delete a collection and its chunks")
    async def delete_collection(name: str) -> dict[str, Any]:
        await run(svc().delete_collection, name)
        await h.emit(
            CollectionDeleted(name=name), subject=f"collections/{name}", source="herald/api"
        )
        return {"object": "collection", "name": name, "deleted": True}

    @r.post("/collections/{name}/reindex", status_code=202, summary="Re-embed a collection")
    async def reindex(name: str, body: ReindexBody | None = None) -> JSONResponse:
        body = body or ReindexBody()
        await run(svc().get_collection, name)
        data: dict[str, Any] = {"collection": name}
        if body.embedding_model:
            data["embedding_model"] = body.embedding_model
        env = h.envelope(
            "collection.reindex.requested",
            data,
            subject=f"collections/{name}",
            correlationid=body.correlationid,
        )
        [stored] = await h.publish(env)
        return JSONResponse(stored.model_dump(mode="json"), status_code=202)

    @r.get("/collections/{name}/documents", summary="Documents of a collection")
    async def list_documents(
        name: str,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        offset: Offset = 0,
        source_prefix: str | None = None,
    ) -> dict[str, Any]:
        docs = await run(
            svc().documents, name, limit=limit, offset=offset, source_prefix=source_prefix
        )
        return {"object": "list", "data": [d.model_dump(mode="json") for d in docs]}

    @r.post(
        "/collections/{name}/documents",
        status_code=202,
        summary="Ingest a file, folder or URL (publishes documents.ingest.requested)",
        responses={403: {"description": "path_not_allowed: outside security.files.allowed_roots"}},
    )
    async def ingest(name: str, body: IngestBody) -> JSONResponse:
        await run(svc().get_collection, name)
        data = body.model_dump(exclude={"correlationid"}, exclude_none=True)
        env = h.envelope(
            "documents.ingest.requested",
            {"collection": name, **data},
            subject=f"collections/{name}",
            correlationid=body.correlationid,
        )
        [stored] = await h.publish(env)
        return JSONResponse(stored.model_dump(mode="json"), status_code=202)

    @r.delete("/collections/{name}/documents", summary="Delete documents (all their chunks)")
    async def delete_documents(
        name: str, ref_doc_id: Annotated[list[str], Query(min_length=1)]
    ) -> dict[str, Any]:
        check_name(name)
        counts = await run(svc().delete_documents, name, ref_doc_id)
        await h.emit(
            DocumentsDeleted(collection=name, ref_doc_ids=ref_doc_id, **counts),
            subject=f"collections/{name}",
            source="herald/api",
        )
        return {"object": "documents.deleted", "collection": name, **counts}

    @r.post("/collections/{name}/query", summary="Retrieve chunks for a query")
    async def query(name: str, body: QueryBody) -> dict[str, Any]:
        if not body.query.strip():
            raise RagError("query must not be empty")
        service = svc()
        hits = await run(
            service.retrieve,
            name,
            body.query,
            k=body.k,
            mode=body.mode,
            filters=body.filters,
            mmr=body.mmr,
            mmr_lambda=body.mmr_lambda,
            rerank=service.reranker() if body.rerank else None,
        )
        return {
            "object": "list",
            "collection": name,
            "mode": body.mode,
            "data": [x.to_dict() for x in hits],
        }

    return r
