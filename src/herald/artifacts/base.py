"""The artifact-store port: content-hashed files and folders addressed by a validated key.

Layout shared by every adapter (``<root>`` is the store URL's path)::

    <root>/<key>                          a file artifact (put_bytes / put_file)
    <root>/.herald/meta/<key>.json        its {"sha256", "size"} sidecar, written after the data
    <root>/<key>/...                      the files of a folder artifact (put_dir)
    <root>/<key>/manifest.json            {"files": {path: {"sha256", "size"}}}, written last

A folder without its manifest does not exist, and a file without its sidecar does not exist, so a
reader never sees a half-written artifact. Every read verifies sha256 against the recorded hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel

from herald.errors import HeraldError

MANIFEST = "manifest.json"
META_PREFIX = ".herald"
#: Pickle-based formats can run code when loaded; artifacts hold safetensors/JSON instead.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pkl", ".pth", ".ckpt", ".pickle", ".joblib"})
_SEGMENT = re.compile(r"^[A-Za-z0-9_@+=,-][A-Za-z0-9._@+=,-]*$")
CHUNK = 1 << 20


class ArtifactError(HeraldError):
    """An artifact operation was refused (bad key, missing artifact shape, ...)."""

    code = "invalid_artifact"
    status = 422


class InvalidArtifactKey(ArtifactError):
    code = "invalid_artifact_key"


class UnsafeArtifact(ArtifactError):
    """A pickle-format file (.bin, .pt, .pkl, .pth, .ckpt, ...) was offered to the store."""

    code = "unsafe_artifact"


class ArtifactCorrupted(HeraldError):
    """Stored bytes do not match their recorded sha256 (or the manifest is unreadable)."""

    code = "artifact_corrupted"
    status = 500


class ArtifactNotFound(HeraldError):
    code = "not_found"
    status = 404


class ArtifactRef(BaseModel):
    """Where an artifact lives and what it holds (for a folder: sha256 of its manifest)."""

    uri: str
    key: str
    sha256: str
    size: int


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative path; raise :class:`InvalidArtifactKey`.

    The key is URL-decoded (repeatedly) first, so ``%2e%2e`` is seen as ``..``.
    """
    if not isinstance(key, str) or not key:
        raise InvalidArtifactKey("artifact key must be a non-empty string")
    decoded = key
    for _ in range(4):
        nxt = unquote(decoded)
        if nxt == decoded:
            break
        decoded = nxt
    for k in (key, decoded):
        if "\x00" in k:
            raise InvalidArtifactKey(f"artifact key {key!r} contains a NUL byte")
        if "\\" in k:
            raise InvalidArtifactKey(f"artifact key {key!r} contains a backslash; use '/'")
        if k.startswith("/") or re.match(r"^[A-Za-z]:", k):
            raise InvalidArtifactKey(f"artifact key {key!r} is absolute; keys are relative paths")
        if any(part in ("..", ".") for part in k.split("/")):
            raise InvalidArtifactKey(f"artifact key {key!r} contains '.' or '..' segments")
    if decoded != key:
        raise InvalidArtifactKey(f"artifact key {key!r} is percent-encoded; pass the plain key")
    if len(key) > 1024:
        raise InvalidArtifactKey("artifact key is longer than 1024 characters")
    parts = key.split("/")
    if parts[0] == META_PREFIX:
        raise InvalidArtifactKey(f"artifact keys may not start with {META_PREFIX}/ (reserved)")
    for part in parts:
        if not part:
            raise InvalidArtifactKey(f"artifact key {key!r} has an empty segment")
        if len(part) > 255 or not _SEGMENT.match(part):
            raise InvalidArtifactKey(
                f"artifact key segment {part!r} is not allowed: use letters, digits and "
                "._-@+=, (not starting with '.')"
            )
    return key


def validate_relpath(rel: str) -> str:
    """A file path inside a folder artifact: relative, no traversal, no backslashes or NUL."""
    p = PurePosixPath(rel)
    if (
        not rel
        or "\x00" in rel
        or "\\" in rel
        or p.is_absolute()
        or any(part in ("..", ".", "") for part in rel.split("/"))
    ):
        raise InvalidArtifactKey(f"unsafe file path {rel!r} inside a folder artifact")
    return rel


def refuse_pickle(name: str) -> None:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise UnsafeArtifact(
            f"{name!r} is a pickle-format file ({suffix}); pickle can run code when loaded, so "
            "Herald stores safetensors only: save weights with safetensors "
            "(save_pretrained(safe_serialization=True) / safetensors.torch.save_file) and other "
            "state as JSON"
        )


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def dir_files(path: Path) -> list[tuple[str, Path]]:
    """(relative posix path, file) of every regular file under ``path``, sorted.

    Symlinks to files are followed (Hugging Face snapshots are symlinks into a blob cache);
    symlinked folders are not descended into.
    """
    import os

    if not path.is_dir():
        raise ArtifactError(f"{path} is not a folder")
    out: list[tuple[str, Path]] = []
    for dirpath, _dirnames, filenames in os.walk(path, followlinks=False):
        for fn in filenames:
            f = Path(dirpath) / fn
            if not f.is_file():
                continue
            rel = f.relative_to(path).as_posix()
            validate_relpath(rel)
            refuse_pickle(rel)
            out.append((rel, f))
    out.sort()
    if any(rel == MANIFEST for rel, _ in out):
        raise ArtifactError(
            f"{path} already contains a top-level {MANIFEST}; Herald writes its own manifest "
            "there: rename that file"
        )
    return out


def manifest_bytes(files: dict[str, dict[str, Any]]) -> bytes:
    return json.dumps({"version": 1, "files": files}, sort_keys=True, indent=1).encode()


def parse_manifest(data: bytes, where: str) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(data)
        files = doc["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
        for rel, entry in files.items():
            validate_relpath(rel)
            if not isinstance(entry, dict) or not {"sha256", "size"} <= set(entry):
                raise TypeError(f"bad entry for {rel}")
    except (ValueError, KeyError, TypeError, InvalidArtifactKey) as exc:
        raise ArtifactCorrupted(f"manifest of {where} is unreadable: {exc}") from exc
    return files


def join_key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


class ArtifactStore(ABC):
    """Content-hashed artifacts under string keys; adapters chosen by URL scheme."""

    url: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> ArtifactRef:
        """Store ``data`` at ``key`` (replacing any previous artifact there)."""

    @abstractmethod
    def put_file(self, key: str, path: Path) -> ArtifactRef:
        """Store a copy of the local file ``path`` at ``key``."""

    @abstractmethod
    def put_dir(self, key: str, path: Path) -> ArtifactRef:
        """Store a copy of folder ``path`` at ``key`` with a manifest; atomic for readers."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The verified bytes of a file artifact (or of one file inside a folder artifact)."""

    @abstractmethod
    def local_dir(self, key: str) -> Path:
        """A local, verified folder holding folder artifact ``key``."""

    @abstractmethod
    def local_file(self, key: str) -> Path:
        """A local, verified copy of file artifact ``key``."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a complete artifact is stored at ``key``."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys of complete artifacts under ``prefix`` (folders count once)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the artifact at ``key`` (no error if absent)."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """The URI of ``key`` in this store (what registries record)."""

    def key_of(self, uri: str) -> str:
        """The key of ``uri`` if it points into this store; else :class:`ArtifactError`."""
        base = self.uri("x")[:-1]
        if not uri.startswith(base):
            raise ArtifactError(f"{uri!r} is not in the artifact store {base.rstrip('/')}")
        return validate_key(uri[len(base) :])

    # helpers shared by adapters ------------------------------------------------------------
    @staticmethod
    def _check_put(key: str) -> str:
        validate_key(key)
        refuse_pickle(key)
        return key

    @staticmethod
    def _verify(data: bytes, expected: str, where: str) -> bytes:
        got = sha256_bytes(data)
        if got != expected:
            raise ArtifactCorrupted(
                f"{where} is corrupted: sha256 {got[:12]}… does not match the recorded "
                f"{expected[:12]}…; re-upload it"
            )
        return data


def prefix_match(keys: Iterable[str], prefix: str) -> list[str]:
    prefix = prefix.strip("/")
    if not prefix:
        return sorted(set(keys))
    return sorted({k for k in keys if k == prefix or k.startswith(prefix + "/")})
