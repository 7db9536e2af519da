"""Where documents come from: a local file or folder, or any fsspec URL (``s3://b/prefix``).

Local paths are resolved and every file found under a folder must stay inside it (symbolic
links pointing elsewhere are skipped); hidden files and folders are ignored. Given a
:class:`~herald.security.files.FilePolicy` (the ``rag.ingest`` job passes the server's), the
source must be allowed by it and each file found must resolve inside its allowed roots too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from herald.errors import ConfigurationError, NotFound
from herald.rag.errors import DocumentError
from herald.security import egress
from herald.security.egress import fetch_bytes
from herald.security.files import FilePolicy


@dataclass(frozen=True)
class SourceFile:
    uri: str  # stable id: file:///abs/path or the fsspec URL
    name: str
    size: int | None
    refused: str | None = None  # why the file policy keeps it out (reported, never read)

    def read(self, max_bytes: int, egress_policy: egress.EgressPolicy | None = None) -> bytes:
        """The file's bytes; an http(s) document is fetched under ``egress_policy`` (the
        strict default without one), every redirect hop checked."""
        if self.size is not None and self.size > max_bytes:
            raise DocumentError(f"{self.uri}: {self.size} bytes is over the {max_bytes}-byte limit")
        if self.uri.startswith("file://"):
            data = Path(self.uri.removeprefix("file://")).read_bytes()
        elif self.uri.startswith(("http://", "https://")):  # the egress policy, every hop
            try:
                data = fetch_bytes(self.uri, egress_policy or egress.EgressPolicy(), max_bytes)
            except httpx.HTTPError as exc:
                raise DocumentError(f"{self.uri}: {exc}") from None
        else:
            import fsspec  # type: ignore[import-untyped]

            with fsspec.open(self.uri, "rb") as f:
                data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise DocumentError(f"{self.uri}: over the {max_bytes}-byte limit")
        return bytes(data)


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") for p in parts)


def list_sources(
    source: str,
    *,
    recursive: bool = True,
    policy: FilePolicy | None = None,
    egress_policy: egress.EgressPolicy | None = None,
) -> list[SourceFile]:
    """Files of ``source`` in a stable order (raises NotFound when nothing is there)."""
    if not source.strip():
        raise ConfigurationError("source must be a path or URL")
    if policy is not None:
        source = policy.source(source, purpose="source")
    if "://" in source and not source.startswith("file://"):
        # a caller's URL: no protocol chains, no private addresses (403 egress_denied)
        if egress.check_source(source, egress_policy or egress.EgressPolicy()) in egress.HTTP:
            name = Path(urlsplit(source).path).name or urlsplit(source).hostname or source
            return [SourceFile(source, name, None)]  # one document: links are not followed
        return _remote(source, recursive)
    path = Path(source.removeprefix("file://")).expanduser()
    try:
        root = path.resolve(strict=True)
    except (FileNotFoundError, OSError):
        raise NotFound(f"no such file or folder: {source}") from None
    if root.is_file():
        return [SourceFile(root.as_uri(), root.name, root.stat().st_size)]
    out: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = Path(dirpath).relative_to(root).parts
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        if _hidden(rel):
            continue
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            p = Path(dirpath) / fn
            real = p.resolve()
            if not real.is_relative_to(root) or not real.is_file():
                continue  # a link out of the folder, or a socket/fifo
            if policy is not None and not policy.walk_allowed(p):
                # server state inside an allowed folder (keys, databases): reported, not read
                why = "not read: the server's file access policy keeps key and database files out"
                out.append(SourceFile(p.as_uri(), fn, None, refused=why))
                continue
            out.append(SourceFile(real.as_uri(), fn, real.stat().st_size))
    return out


def _remote(url: str, recursive: bool) -> list[SourceFile]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise ConfigurationError(f"cannot open {url}: {exc}") from None
    protocol = url.split("://", 1)[0]
    if not fs.exists(path):
        raise NotFound(f"nothing at {url}")
    if fs.isfile(path):
        info = fs.info(path)
        return [SourceFile(url, Path(path).name, info.get("size"))]
    found = fs.find(path, maxdepth=None if recursive else 1, detail=True)
    out = []
    for p, info in sorted(found.items()):
        rel = p[len(path.rstrip("/")) + 1 :]
        if info.get("type") != "file" or _hidden(tuple(rel.split("/"))):
            continue
        out.append(SourceFile(f"{protocol}://{p}", Path(p).name, info.get("size")))
    return out
