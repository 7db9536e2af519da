"""S3-compatible artifact store via fsspec/s3fs: ``s3://bucket/prefix``.

Options ride in the URL query: ``s3://bucket/prefix?endpoint_url=http://127.0.0.1:9000&region=eu-west-1``
(credentials come from the usual AWS variables or profiles; ``AWS_ENDPOINT_URL`` also works).
Object stores have no rename, so a folder's ``manifest.json`` is written last and deleted first:
a folder without a manifest is "not there". Reads that need local files (``local_dir``,
``local_file``) download into a content-addressed cache and verify every hash.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

from herald.artifacts.base import (
    MANIFEST,
    META_PREFIX,
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactRef,
    ArtifactStore,
    dir_files,
    manifest_bytes,
    parse_manifest,
    prefix_match,
    sha256_bytes,
    sha256_file,
    validate_key,
)
from herald.errors import BackendError, BackendUnavailable

_OPTIONS = {"endpoint_url", "region", "anon", "profile"}


class S3ArtifactStore(ArtifactStore):
    """Artifacts in an S3 bucket (or any S3-compatible endpoint: MinIO, moto, R2, ...)."""

    scheme = "s3"

    def __init__(
        self,
        url: str,
        *,
        cache_dir: Path | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
            raise ArtifactError(f"expected s3://bucket[/prefix], got {url!r}")
        query = dict(parse_qsl(parsed.query))
        unknown = set(query) - _OPTIONS
        if unknown:
            raise ArtifactError(
                f"unknown S3 option(s) {', '.join(sorted(unknown))} in {url!r} "
                f"(known: {', '.join(sorted(_OPTIONS))})"
            )
        try:
            import s3fs  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendUnavailable(
                'the S3 artifact store needs s3fs: pip install "herald[s3]"'
            ) from exc
        options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
        client_kwargs: dict[str, Any] = {}
        if "endpoint_url" in query:
            client_kwargs["endpoint_url"] = query["endpoint_url"]
        if "region" in query:
            client_kwargs["region_name"] = query["region"]
        if query.get("anon", "").lower() in ("1", "true", "yes"):
            options["anon"] = True
        if "profile" in query:
            options["profile"] = query["profile"]
        if client_kwargs:
            options["client_kwargs"] = client_kwargs
        options.update(storage_options or {})
        self.fs = s3fs.S3FileSystem(**options)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.base = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        q = f"?{urlencode(query)}" if query else ""
        self.url = f"s3://{self.base}{q}"
        self._uri_base = f"s3://{self.base}"
        if cache_dir is None:
            from herald.settings import default_home

            cache_dir = default_home() / "cache" / "artifacts"
        self.cache_dir = Path(cache_dir)

    # paths -----------------------------------------------------------------------------------
    def _data(self, key: str) -> str:
        return f"{self.base}/{validate_key(key)}"

    def _sidecar(self, key: str) -> str:
        return f"{self.base}/{META_PREFIX}/meta/{validate_key(key)}.json"

    def _call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except (FileNotFoundError, ArtifactError, ArtifactCorrupted, ArtifactNotFound):
            raise
        except PermissionError as exc:
            raise BackendError(f"S3 refused {what} in {self._uri_base}: {exc}") from exc
        except OSError as exc:
            raise BackendError(f"S3 {what} failed in {self._uri_base}: {exc}") from exc

    def _cat(self, path: str) -> bytes | None:
        try:
            return bytes(self._call("read", self.fs.cat_file, path))
        except FileNotFoundError:
            return None

    def _rm(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._call("delete", self.fs.rm_file, path)

    # writes ----------------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes) -> ArtifactRef:
        self._check_put(key)
        self._clear(key)
        digest = sha256_bytes(data)
        self._call("write", self.fs.pipe_file, self._data(key), data)
        meta = json.dumps({"sha256": digest, "size": len(data)}).encode()
        self._call("write", self.fs.pipe_file, self._sidecar(key), meta)
        return ArtifactRef(uri=self.uri(key), key=key, sha256=digest, size=len(data))

    def put_file(self, key: str, path: Path) -> ArtifactRef:
        self._check_put(key)
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"{path} is not a file")
        self._clear(key)
        digest, size = sha256_file(path)
        self._call("upload", self.fs.put_file, str(path), self._data(key))
        meta = json.dumps({"sha256": digest, "size": size}).encode()
        self._call("write", self.fs.pipe_file, self._sidecar(key), meta)
        return ArtifactRef(uri=self.uri(key), key=key, sha256=digest, size=size)

    def put_dir(self, key: str, path: Path) -> ArtifactRef:
        self._check_put(key)
        files = dir_files(Path(path))
        self._clear(key)  # deletes the old manifest first: from here on the key is absent
        folder = self._data(key)
        entries: dict[str, dict[str, Any]] = {}
        total = 0
        for rel, src in files:
            digest, size = sha256_file(src)
            self._call("upload", self.fs.put_file, str(src), f"{folder}/{rel}")
            entries[rel] = {"sha256": digest, "size": size}
            total += size
        manifest = manifest_bytes(entries)
        self._call("write", self.fs.pipe_file, f"{folder}/{MANIFEST}", manifest)
        return ArtifactRef(uri=self.uri(key), key=key, sha256=sha256_bytes(manifest), size=total)

    def _clear(self, key: str) -> None:
        self._rm(self._sidecar(key))
        folder = self._data(key)
        existing = self._find(folder)
        own = f"{folder}/{MANIFEST}"
        nested = [p for p in existing if p.endswith(f"/{MANIFEST}") and p != own]
        if nested or self._find(f"{self.base}/{META_PREFIX}/meta/{key}/"):
            raise ArtifactError(
                f"cannot store at {key!r}: other artifacts are stored under it; "
                "delete them or choose another key"
            )
        if f"{folder}/{MANIFEST}" in existing:
            self._rm(f"{folder}/{MANIFEST}")
            existing.remove(f"{folder}/{MANIFEST}")
        for p in existing:
            self._rm(p)

    def _find(self, path: str) -> list[str]:
        try:
            found = self._call("list", self.fs.find, path)
        except FileNotFoundError:
            return []
        return [str(p) for p in found]

    def delete(self, key: str) -> None:
        validate_key(key)
        self._rm(self._sidecar(key))
        folder = self._data(key)
        existing = self._find(folder)
        if f"{folder}/{MANIFEST}" in existing:
            self._rm(f"{folder}/{MANIFEST}")
            for p in existing:
                if p != f"{folder}/{MANIFEST}":
                    self._rm(p)
        elif existing == [folder]:
            self._rm(folder)

    # reads -----------------------------------------------------------------------------------
    def _file_meta(self, key: str) -> tuple[str, str, int]:
        raw = self._cat(self._sidecar(key))
        if raw is not None:
            meta = json.loads(raw)
            return self._data(key), str(meta["sha256"]), int(meta["size"])
        if self._cat(f"{self._data(key)}/{MANIFEST}") is not None:
            raise ArtifactError(f"{key!r} is a folder artifact; use local_dir()")
        parts = key.split("/")
        for i in range(len(parts) - 1, 0, -1):
            folder_key = "/".join(parts[:i])
            manifest = self._cat(f"{self.base}/{folder_key}/{MANIFEST}")
            if manifest is not None:
                files = parse_manifest(manifest, folder_key)
                rel = "/".join(parts[i:])
                if rel in files:
                    entry = files[rel]
                    return f"{self.base}/{key}", str(entry["sha256"]), int(entry["size"])
                break
        raise ArtifactNotFound(f"no artifact {key!r} in {self._uri_base}")

    def get_bytes(self, key: str) -> bytes:
        path, digest, _ = self._file_meta(validate_key(key))
        data = self._cat(path)
        if data is None:
            raise ArtifactCorrupted(f"{key!r} is recorded but its data object is missing")
        return self._verify(data, digest, repr(key))

    def local_file(self, key: str) -> Path:
        path, digest, _ = self._file_meta(validate_key(key))
        name = key.rsplit("/", 1)[-1]
        target = self.cache_dir / "files" / digest / name
        if target.is_file() and sha256_file(target)[0] == digest:
            return target
        tmp = self._tmp()
        try:
            dst = tmp / name
            self._call("download", self.fs.get_file, path, str(dst))
            got, _ = sha256_file(dst)
            if got != digest:
                raise ArtifactCorrupted(
                    f"{key!r} is corrupted: sha256 {got[:12]}… does not match {digest[:12]}…"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            dst.replace(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def local_dir(self, key: str) -> Path:
        from herald.artifacts.local import verify_folder

        folder = self._data(key)
        raw = self._cat(f"{folder}/{MANIFEST}")
        if raw is None:
            if self._cat(self._sidecar(key)) is not None:
                raise ArtifactError(f"{key!r} is a file artifact; use local_file() or get_bytes()")
            raise ArtifactNotFound(f"no folder artifact {key!r} in {self._uri_base}")
        files = parse_manifest(raw, key)
        target = self.cache_dir / "dirs" / sha256_bytes(raw)
        if (target / MANIFEST).is_file():
            verify_folder(target, files, key)
            return target
        tmp = self._tmp()
        try:
            for rel in files:
                dst = tmp / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                self._call("download", self.fs.get_file, f"{folder}/{rel}", str(dst))
            verify_folder(tmp, files, key)
            (tmp / MANIFEST).write_bytes(raw)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp.rename(target)
            except OSError:
                if not (target / MANIFEST).is_file():  # not a concurrent download that won
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def _tmp(self) -> Path:
        tmp = self.cache_dir / ".tmp" / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        return tmp

    def exists(self, key: str) -> bool:
        folder = self._data(key)
        if self._call("stat", self.fs.exists, f"{folder}/{MANIFEST}"):
            return True
        return bool(
            self._call("stat", self.fs.exists, self._sidecar(key))
            and self._call("stat", self.fs.exists, folder)
        )

    def list(self, prefix: str = "") -> list[str]:
        meta = f"{self.base}/{META_PREFIX}/meta/"
        keys: list[str] = []
        folders: list[str] = []
        for p in self._find(self.base):
            if p.startswith(meta) and p.endswith(".json"):
                keys.append(p[len(meta) : -len(".json")])
            elif p.endswith(f"/{MANIFEST}") and not p.startswith(f"{self.base}/{META_PREFIX}/"):
                folders.append(p[len(self.base) + 1 : -len(MANIFEST) - 1])
        shallow: list[str] = []
        for f in sorted(folders):
            if not any(f.startswith(s + "/") for s in shallow):
                shallow.append(f)
        return prefix_match([*keys, *shallow], prefix)

    def uri(self, key: str) -> str:
        return f"{self._uri_base}/{validate_key(key)}"
