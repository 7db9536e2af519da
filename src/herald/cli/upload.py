"""Send local files to a Herald that cannot read them (``PUT /v1/uploads/…``).

The server reads only its allowed folders (``security.files.allowed_roots``). Commands that
name a local file or folder (``herald rag ingest ./docs``, ``herald datasets register
./rows.jsonl``) pass the path itself when the server is on this machine (loopback URL) and
may read it, and otherwise upload the files and name them ``uploads:/<id>[/<file>]``.
``<id>`` is derived from this machine and the absolute path, so the same folder always lands
in the same server folder (unchanged documents are skipped on re-ingestion).
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from herald.security.files import PathNotAllowed, is_loopback_host

PIECE_BYTES = 512 * 1024  # under the server's default 1 MiB request body limit


def server_is_local(c: Any) -> bool:
    """Whether the client talks to a server on this machine (a loopback URL)."""
    return is_loopback_host(urlsplit(c.base_url).hostname or "")


def upload_id(kind: str, path: Path) -> str:
    digest = hashlib.sha256(f"{socket.gethostname()}\0{path}".encode()).hexdigest()[:24]
    return f"{kind}-{digest}"


def local_files(root: Path, *, recursive: bool = True) -> list[tuple[Path, str]]:
    """(file, path relative to ``root``) for a file or the visible files under a folder; a
    link that leaves the folder is skipped (the server would skip it too)."""
    if root.is_file():
        return [(root, root.name)]
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            p = Path(dirpath) / fn
            real = p.resolve()
            if real.is_relative_to(root) and real.is_file():
                out.append((p, p.relative_to(root).as_posix()))
    return out


def upload(
    c: Any,
    path: Path,
    *,
    kind: str,
    recursive: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Mirror ``path`` (file or folder) into an upload; returns the ``uploads:/…`` source."""
    root = path.resolve()
    uid = upload_id(kind, root)
    files = local_files(root, recursive=recursive)
    c._request("DELETE", f"/v1/uploads/{uid}")  # mirror exactly: no file of an earlier run
    for n, (f, rel) in enumerate(files, 1):
        url = f"/v1/uploads/{uid}/files/{quote(rel, safe='/')}"
        with f.open("rb") as fh:
            offset = 0
            while True:
                piece = fh.read(PIECE_BYTES)
                if not piece and offset:
                    break
                c._request(
                    "PUT",
                    url,
                    params={"offset": offset},
                    content=piece,
                    headers={"Content-Type": "application/octet-stream"},
                )
                offset += len(piece)
                if len(piece) < PIECE_BYTES:
                    break
        if progress is not None:
            progress(n, len(files))
    if root.is_file():
        return f"uploads:/{uid}/{root.name}"
    return f"uploads:/{uid}"


def send_local(
    c: Any,
    path: Path,
    publish: Callable[[str], Any],
    *,
    kind: str,
    mode: bool | None,
    recursive: bool = True,
) -> Any:
    """``publish(source)`` with the local path when the server may read it, else with an
    upload of it. ``mode``: True always uploads, False never does, None decides."""
    if mode is False or (mode is None and server_is_local(c)):
        try:
            return publish(str(path.resolve()))
        except PathNotAllowed:
            if mode is False:
                raise
    return publish(upload(c, path, kind=kind, recursive=recursive))


__all__ = ["local_files", "send_local", "server_is_local", "upload", "upload_id"]
