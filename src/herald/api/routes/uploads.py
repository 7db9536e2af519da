"""Uploads: files a client sends so the server can read them (admin scope).

    PUT    /v1/uploads/{upload_id}/files/{path}?offset=N   raw bytes; offset 0 (re)creates
    GET    /v1/uploads/{upload_id}                         files and bytes held
    DELETE /v1/uploads/{upload_id}                         remove the upload

A request that names ``uploads:/{upload_id}[/{path}]`` (RAG ingestion, ``dataset.register``,
suites) reads them; see :mod:`herald.security.uploads`. Each request body stays under the
API's body limit: the CLI sends large files in pieces at increasing offsets.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request

from herald.security.files import UPLOADS_PREFIX
from herald.security.uploads import UploadStore

if TYPE_CHECKING:
    from herald.bootstrap import Herald


def router(h: Herald) -> APIRouter:
    r = APIRouter(tags=["uploads"])
    fs = h.settings.security.files
    store = UploadStore(
        h.settings.home, max_bytes=fs.max_upload_bytes, max_files=fs.max_upload_files
    )

    @r.put(
        "/uploads/{upload_id}/files/{path:path}",
        summary="Write (a piece of) a file into an upload",
        responses={
            403: {"description": "not allowed"},
            409: {"description": "bad offset"},
            413: {"description": "over the upload limits"},
        },
    )
    async def put_file(
        upload_id: str, path: str, request: Request, offset: Annotated[int, Query(ge=0)] = 0
    ) -> dict[str, Any]:
        data = await request.body()
        f = await asyncio.to_thread(store.write, upload_id, path, data, offset=offset)
        return {
            "object": "upload.file",
            "upload_id": f.upload_id,
            "path": f.path,
            "size": f.size,
            "uri": f.uri,
        }

    @r.get("/uploads/{upload_id}", summary="Files and bytes held by an upload")
    async def get_upload(upload_id: str) -> dict[str, Any]:
        files, size = await asyncio.to_thread(store.usage, upload_id)
        return {
            "object": "upload",
            "upload_id": upload_id,
            "files": files,
            "bytes": size,
            "uri": f"{UPLOADS_PREFIX}{upload_id}",
        }

    @r.delete("/uploads/{upload_id}", summary="Remove an upload and its files")
    async def delete_upload(upload_id: str) -> dict[str, Any]:
        deleted = await asyncio.to_thread(store.delete, upload_id)
        return {"object": "upload", "upload_id": upload_id, "deleted": deleted}

    return r
