"""Local-folder artifact store (``file:///path``): the embedded default.

Writes go to ``<root>/.herald/tmp`` first and are renamed into place, so a reader sees either
the old artifact, nothing, or the complete new one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

from herald.artifacts.base import (
    CHUNK,
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


def _path_from_url(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme not in ("file", ""):
        raise ArtifactError(f"not a file URL: {url!r}")
    if parsed.netloc not in ("", "localhost"):
        raise ArtifactError(f"file URL {url!r} names a host; use file:///absolute/path")
    raw = unquote(parsed.path) if parsed.scheme else url
    if not raw:
        raise ArtifactError(f"file URL {url!r} has no path")
    return Path(raw).expanduser().resolve()


class LocalArtifactStore(ArtifactStore):
    """Artifacts in a local folder."""

    def __init__(self, url: str) -> None:
        self.root = _path_from_url(url)
        self.url = self.root.as_uri()
        self._meta = self.root / META_PREFIX / "meta"
        self._tmp = self.root / META_PREFIX / "tmp"

    # paths -----------------------------------------------------------------------------------
    def _data(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _sidecar(self, key: str) -> Path:
        return self._meta / f"{validate_key(key)}.json"

    def _tmp_path(self) -> Path:
        self._tmp.mkdir(parents=True, exist_ok=True)
        return self._tmp / uuid.uuid4().hex

    def _write_atomic(self, target: Path, data: bytes) -> None:
        tmp = self._tmp_path()
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self._mkparent(target)
        os.replace(tmp, target)

    def _mkparent(self, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ArtifactError(
                f"cannot store under {target.relative_to(self.root)}: a parent is a file artifact"
            ) from exc

    def _remove(self, path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            trash = self._tmp_path()
            os.replace(path, trash)
            shutil.rmtree(trash, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()

    # writes ----------------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes) -> ArtifactRef:
        self._check_put(key)
        digest = sha256_bytes(data)
        target = self._data(key)
        self._clear(key)
        self._write_atomic(target, data)
        self._write_atomic(
            self._sidecar(key), json.dumps({"sha256": digest, "size": len(data)}).encode()
        )
        return ArtifactRef(uri=self.uri(key), key=key, sha256=digest, size=len(data))

    def put_file(self, key: str, path: Path) -> ArtifactRef:
        self._check_put(key)
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"{path} is not a file")
        tmp = self._tmp_path()
        digest, size = _copy_hashing(path, tmp)
        target = self._data(key)
        self._clear(key)
        self._mkparent(target)
        os.replace(tmp, target)
        self._write_atomic(
            self._sidecar(key), json.dumps({"sha256": digest, "size": size}).encode()
        )
        return ArtifactRef(uri=self.uri(key), key=key, sha256=digest, size=size)

    def put_dir(self, key: str, path: Path) -> ArtifactRef:
        self._check_put(key)
        files = dir_files(Path(path))
        tmp = self._tmp_path()
        entries: dict[str, dict[str, object]] = {}
        total = 0
        try:
            for rel, src in files:
                dst = tmp / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                digest, size = _copy_hashing(src, dst)
                entries[rel] = {"sha256": digest, "size": size}
                total += size
            tmp.mkdir(parents=True, exist_ok=True)
            manifest = manifest_bytes(entries)
            (tmp / MANIFEST).write_bytes(manifest)
            target = self._data(key)
            self._clear(key)
            self._mkparent(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return ArtifactRef(uri=self.uri(key), key=key, sha256=sha256_bytes(manifest), size=total)

    def _clear(self, key: str) -> None:
        """Remove whatever is at ``key`` (sidecar first, so readers see 'absent', not 'corrupt')."""
        target = self._data(key)
        if target.is_dir() and not target.is_symlink():
            nested = [p for p in target.rglob(MANIFEST) if p != target / MANIFEST]
            if nested or (self._meta / key).is_dir():
                raise ArtifactError(
                    f"cannot store at {key!r}: other artifacts are stored under it; "
                    "delete them or choose another key"
                )
        sidecar = self._sidecar(key)
        if sidecar.exists():
            sidecar.unlink()
        if target.is_dir() and not target.is_symlink():
            if (target / MANIFEST).exists():
                (target / MANIFEST).unlink()
            self._remove(target)
        elif target.exists() or target.is_symlink():
            target.unlink()

    def delete(self, key: str) -> None:
        validate_key(key)
        sidecar = self._sidecar(key)
        if sidecar.exists():
            sidecar.unlink()
        target = self._data(key)
        if target.is_dir():
            manifest = target / MANIFEST
            if manifest.exists():
                manifest.unlink()
                self._remove(target)
        elif target.exists():
            target.unlink()

    # reads -----------------------------------------------------------------------------------
    def _file_meta(self, key: str) -> tuple[Path, str, int]:
        """(path, sha256, size) of a file artifact or of a file inside a folder artifact."""
        sidecar = self._sidecar(key)
        target = self._data(key)
        if sidecar.exists() and target.is_file():
            meta = json.loads(sidecar.read_bytes())
            return target, str(meta["sha256"]), int(meta["size"])
        if (target / MANIFEST).is_file():
            raise ArtifactError(f"{key!r} is a folder artifact; use local_dir()")
        parts = key.split("/")
        for i in range(len(parts) - 1, 0, -1):
            folder = self.root.joinpath(*parts[:i])
            manifest = folder / MANIFEST
            if manifest.is_file():
                files = parse_manifest(manifest.read_bytes(), "/".join(parts[:i]))
                rel = "/".join(parts[i:])
                if rel in files:
                    return folder / rel, str(files[rel]["sha256"]), int(files[rel]["size"])
                break
        raise ArtifactNotFound(f"no artifact {key!r} in {self.url}")

    def get_bytes(self, key: str) -> bytes:
        path, digest, _ = self._file_meta(validate_key(key))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactCorrupted(f"{key!r} is recorded but its data file is missing") from None
        return self._verify(data, digest, repr(key))

    def local_file(self, key: str) -> Path:
        path, digest, _ = self._file_meta(validate_key(key))
        _verify_file(path, digest, key)
        return path

    def local_dir(self, key: str) -> Path:
        folder = self._data(key)
        manifest = folder / MANIFEST
        if not manifest.is_file():
            if self._sidecar(key).exists():
                raise ArtifactError(f"{key!r} is a file artifact; use local_file() or get_bytes()")
            raise ArtifactNotFound(f"no folder artifact {key!r} in {self.url}")
        verify_folder(folder, parse_manifest(manifest.read_bytes(), key), key)
        return folder

    def exists(self, key: str) -> bool:
        target = self._data(key)
        return (self._sidecar(key).exists() and target.is_file()) or (target / MANIFEST).is_file()

    def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        if self._meta.is_dir():
            for p in self._meta.rglob("*.json"):
                key = p.relative_to(self._meta).as_posix()[: -len(".json")]
                if (self.root / key).is_file():
                    keys.append(key)
        if self.root.is_dir():
            for dirpath, dirnames, filenames in os.walk(self.root):
                if Path(dirpath) == self.root and META_PREFIX in dirnames:
                    dirnames.remove(META_PREFIX)
                if MANIFEST in filenames and Path(dirpath) != self.root:
                    keys.append(Path(dirpath).relative_to(self.root).as_posix())
                    dirnames.clear()  # files inside a folder artifact are not keys of their own
        return prefix_match(keys, prefix)

    def uri(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{validate_key(key)}"


def _copy_hashing(src: Path, dst: Path) -> tuple[str, int]:
    import hashlib

    h = hashlib.sha256()
    size = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return h.hexdigest(), size


def _verify_file(path: Path, digest: str, where: str) -> None:
    try:
        got, _ = sha256_file(path)
    except FileNotFoundError:
        raise ArtifactCorrupted(f"{where!r}: file {path.name} is missing") from None
    if got != digest:
        raise ArtifactCorrupted(
            f"{where!r}: {path.name} has sha256 {got[:12]}…, expected {digest[:12]}…; re-upload it"
        )


def verify_folder(folder: Path, files: dict[str, dict[str, object]], key: str) -> None:
    """Every manifest entry is present with its hash, and nothing else is there."""
    for rel, entry in files.items():
        _verify_file(folder / rel, str(entry["sha256"]), f"{key}/{rel}")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    present.discard(MANIFEST)
    extra = sorted(present - set(files))
    if extra:
        raise ArtifactCorrupted(
            f"{key!r} holds files not in its manifest ({', '.join(extra[:5])}); it was modified "
            "after upload"
        )
