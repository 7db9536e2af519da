"""Files a client uploads so the server can read them: ``$HERALD_HOME/uploads/<id>/<path>``.

The server reads only allowed folders (:mod:`herald.security.files`), so a client with files
the server cannot see (``herald rag ingest ./docs`` against a remote Herald) sends their bytes
instead, one file at a time in pieces no larger than the request body limit, and then names
them as ``uploads:/<id>/<path>`` (a folder: ``uploads:/<id>``). The CLI derives ``<id>`` from
the local folder, so ingesting the same folder again writes the same server paths (same RAG
document ids: unchanged files are skipped, ``--prune`` works); it clears the upload first so it
mirrors the folder exactly.

Bounds: ``security.files.max_upload_bytes`` per upload, ``security.files.max_upload_files``
files per upload; paths are relative, without ``.``/``..``/hidden parts, NUL or backslashes.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from herald.errors import Conflict, HeraldError, PayloadTooLarge
from herald.security.files import UPLOAD_ID, UPLOADS_DIR, UPLOADS_PREFIX

MAX_PATH_CHARS = 1024
MAX_DEPTH = 32


class UploadError(HeraldError):
    """An upload request that cannot be stored (bad id or path)."""

    code = "invalid_upload"
    status = 422


@dataclass(frozen=True)
class UploadedFile:
    upload_id: str
    path: str
    size: int

    @property
    def uri(self) -> str:
        return f"{UPLOADS_PREFIX}{self.upload_id}/{self.path}"


def check_upload_id(upload_id: str) -> str:
    if not UPLOAD_ID.match(upload_id):
        raise UploadError("upload id must be 8-64 letters, digits, '_' or '-'")
    return upload_id


def check_relative(path: str) -> str:
    """A relative POSIX path of a file inside an upload (refused: absolute, ``..``, hidden)."""
    if not path or len(path) > MAX_PATH_CHARS or "\x00" in path or "\\" in path:
        raise UploadError(
            f"file path must be 1-{MAX_PATH_CHARS} characters, without NUL or backslashes"
        )
    parts = path.split("/")
    if path.startswith("/") or len(parts) > MAX_DEPTH:
        raise UploadError(f"file path must be relative, at most {MAX_DEPTH} folders deep")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise UploadError("file path parts must not be empty, '.', '..' or hidden (.name)")
    return path


class UploadStore:
    """Uploads under ``home/uploads``; writes are appends at the size the client expects."""

    def __init__(self, home: Path, *, max_bytes: int, max_files: int) -> None:
        self.root = Path(home).expanduser().resolve() / UPLOADS_DIR
        self.max_bytes = max_bytes
        self.max_files = max_files
        self._lock = threading.Lock()

    def _base(self, upload_id: str) -> Path:
        return self.root / check_upload_id(upload_id)

    def _usage(self, base: Path) -> tuple[int, int]:
        files = size = 0
        for dirpath, _dirs, names in os.walk(base):
            for n in names:
                files += 1
                size += (Path(dirpath) / n).lstat().st_size
        return files, size

    def write(self, upload_id: str, path: str, data: bytes, *, offset: int = 0) -> UploadedFile:
        """Write ``data`` at ``offset`` (0 creates or truncates; else it must be the file's size)."""
        base = self._base(upload_id)
        rel = check_relative(path)
        target = base / rel
        with self._lock:
            files, size = self._usage(base) if base.is_dir() else (0, 0)
            exists = target.is_file() and not target.is_symlink()
            current = target.stat().st_size if exists else 0
            if offset not in (0, current):
                raise Conflict(
                    f"{rel}: offset {offset} does not continue the upload (it has {current} "
                    "bytes); send the file again from offset 0"
                )
            if not exists and files >= self.max_files:
                raise PayloadTooLarge(
                    f"an upload holds at most {self.max_files} files "
                    "(security.files.max_upload_files); upload fewer files"
                )
            replaced = current if offset == 0 else 0
            if size - replaced + len(data) > self.max_bytes:
                raise PayloadTooLarge(
                    f"an upload holds at most {self.max_bytes} bytes "
                    "(security.files.max_upload_bytes); upload less"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.parent.resolve().is_relative_to(base.resolve()):
                raise UploadError("file path leaves its upload")
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if offset == 0 else 0)
            try:
                fd = os.open(target, flags, 0o600)
            except OSError:
                raise UploadError(f"{rel}: cannot be written (a folder or a link?)") from None
            with os.fdopen(fd, "wb") as f:
                f.seek(offset)
                f.write(data)
                new_size = f.tell()
        return UploadedFile(upload_id, rel, new_size)

    def delete(self, upload_id: str) -> bool:
        base = self._base(upload_id)
        with self._lock:
            if not base.exists():
                return False
            shutil.rmtree(base)
            return True

    def usage(self, upload_id: str) -> tuple[int, int]:
        """(files, bytes) of an upload (0, 0 when there is none)."""
        base = self._base(upload_id)
        return self._usage(base) if base.is_dir() else (0, 0)


__all__ = ["UploadError", "UploadStore", "UploadedFile", "check_relative", "check_upload_id"]
