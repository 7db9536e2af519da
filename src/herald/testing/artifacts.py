"""The artifact-store contract kit: what every :class:`~herald.artifacts.base.ArtifactStore` does.

Subclass :class:`ArtifactStoreContract` and provide a ``store`` fixture returning a fresh, empty
store, and override :meth:`ArtifactStoreContract.tamper` to overwrite stored bytes behind the
store's back (the kit checks that every read verifies the recorded sha256)::

    class TestAzureStore(ArtifactStoreContract):
        @pytest.fixture
        def store(self, azurite_url, tmp_path):
            return AzureArtifactStore(azurite_url, cache_dir=tmp_path / "cache")

        def tamper(self, store, key, data):
            store.container.upload_blob(key, data, overwrite=True)

The checks: byte, file and folder round trips with their sha256 and size, overwrite, listing by
prefix, delete (idempotent), refusal of unsafe keys and pickle formats, the error types for
missing artifacts, and detection of corrupted bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herald.artifacts import (
    ArtifactCorrupted,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStore,
    InvalidArtifactKey,
    UnsafeArtifact,
)
from herald.artifacts.base import sha256_bytes

__all__ = ["ArtifactStoreContract", "make_model_dir"]


def make_model_dir(root: Path) -> Path:
    """A small model-like folder (config, weights, a nested tokenizer file) under ``root``."""
    d = root / "model"
    (d / "sub").mkdir(parents=True)
    (d / "config.json").write_text('{"hidden_size": 32}')
    (d / "model.safetensors").write_bytes(b"\x00" * 1000 + b"weights")
    (d / "sub" / "tokenizer.json").write_text("{}")
    return d


class ArtifactStoreContract:
    """The observable contract of :class:`~herald.artifacts.base.ArtifactStore` (see the
    module doc); subclasses provide a ``store`` fixture and :meth:`tamper`."""

    def test_bytes_roundtrip(self, store: ArtifactStore) -> None:
        ref = store.put_bytes("a/b.txt", b"hello")
        assert ref.key == "a/b.txt"
        assert ref.sha256 == sha256_bytes(b"hello")
        assert ref.size == 5
        assert ref.uri == store.uri("a/b.txt")
        assert store.get_bytes("a/b.txt") == b"hello"
        assert store.exists("a/b.txt")
        assert not store.exists("a/c.txt")
        assert store.key_of(ref.uri) == "a/b.txt"

    def test_overwrite_replaces(self, store: ArtifactStore) -> None:
        store.put_bytes("x.json", b"1")
        store.put_bytes("x.json", b"22")
        assert store.get_bytes("x.json") == b"22"

    def test_put_file_and_local_file(self, store: ArtifactStore, tmp_path: Path) -> None:
        src = tmp_path / "data.jsonl"
        src.write_text('{"a": 1}\n')
        ref = store.put_file("datasets/d/1/data.jsonl", src)
        assert ref.size == src.stat().st_size
        local = store.local_file("datasets/d/1/data.jsonl")
        assert local.read_text() == '{"a": 1}\n'

    def test_dir_roundtrip_with_manifest(self, store: ArtifactStore, tmp_path: Path) -> None:
        src = make_model_dir(tmp_path)
        ref = store.put_dir("models/m/1", src)
        assert ref.size == sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
        assert store.exists("models/m/1")
        local = store.local_dir("models/m/1")
        manifest = json.loads((local / "manifest.json").read_bytes())
        assert ref.sha256 == sha256_bytes((local / "manifest.json").read_bytes())
        assert set(manifest["files"]) == {"config.json", "model.safetensors", "sub/tokenizer.json"}
        assert (local / "sub" / "tokenizer.json").read_text() == "{}"
        # a file inside a folder artifact is readable by key, verified against the manifest
        assert store.get_bytes("models/m/1/config.json") == b'{"hidden_size": 32}'
        with pytest.raises(ArtifactError, match="folder artifact"):
            store.get_bytes("models/m/1")

    def test_dir_overwrite_drops_stale_files(self, store: ArtifactStore, tmp_path: Path) -> None:
        src = make_model_dir(tmp_path)
        store.put_dir("m", src)
        (src / "config.json").unlink()
        (src / "extra.txt").write_text("new")
        store.put_dir("m", src)
        local = store.local_dir("m")
        assert not (local / "config.json").exists()
        assert (local / "extra.txt").read_text() == "new"

    def test_list_and_delete(self, store: ArtifactStore, tmp_path: Path) -> None:
        store.put_bytes("runs/r1/metrics.json", b"{}")
        store.put_bytes("runs/r2/metrics.json", b"{}")
        store.put_dir("models/m/1", make_model_dir(tmp_path))
        assert store.list() == ["models/m/1", "runs/r1/metrics.json", "runs/r2/metrics.json"]
        assert store.list("runs") == ["runs/r1/metrics.json", "runs/r2/metrics.json"]
        assert store.list("runs/r1") == ["runs/r1/metrics.json"]
        store.delete("models/m/1")
        store.delete("runs/r1/metrics.json")
        store.delete("never/was")
        assert store.list() == ["runs/r2/metrics.json"]
        assert not store.exists("models/m/1")
        with pytest.raises(ArtifactNotFound):
            store.local_dir("models/m/1")
        with pytest.raises(ArtifactNotFound):
            store.get_bytes("runs/r1/metrics.json")

    def test_cannot_clobber_other_artifacts(self, store: ArtifactStore, tmp_path: Path) -> None:
        store.put_bytes("a/b", b"1")
        with pytest.raises(ArtifactError, match="other artifacts"):
            store.put_dir("a", make_model_dir(tmp_path))
        assert store.get_bytes("a/b") == b"1"

    @pytest.mark.parametrize(
        "key",
        [
            "../x",
            "a/../../x",
            "%2e%2e/x",
            "a/%2E%2E/b",
            "%252e%252e/x",
            "/etc/passwd",
            "a\\b",
            "a\x00b",
            "a//b",
            "C:/x",
            ".herald/meta/x",
            "a/%2Fb",
            "",
        ],
    )
    def test_bad_keys_refused(self, store: ArtifactStore, key: str) -> None:
        with pytest.raises(InvalidArtifactKey):
            store.put_bytes(key, b"x")
        with pytest.raises(InvalidArtifactKey):
            store.get_bytes(key)

    @pytest.mark.parametrize("name", ["pytorch_model.bin", "x.pt", "x.PKL", "opt.pth", "c.ckpt"])
    def test_pickle_refused(self, store: ArtifactStore, tmp_path: Path, name: str) -> None:
        with pytest.raises(UnsafeArtifact, match="safetensors"):
            store.put_bytes(f"models/{name}", b"\x80\x04")
        src = make_model_dir(tmp_path)
        (src / name).write_bytes(b"\x80\x04")
        with pytest.raises(UnsafeArtifact):
            store.put_dir("models/m/2", src)
        assert not store.exists("models/m/2")

    def test_missing_artifacts(self, store: ArtifactStore) -> None:
        with pytest.raises(ArtifactNotFound):
            store.get_bytes("nope")
        with pytest.raises(ArtifactNotFound):
            store.local_file("nope")
        with pytest.raises(ArtifactNotFound):
            store.local_dir("nope")
        assert store.list() == []

    def test_corruption_detected(self, store: ArtifactStore, tmp_path: Path) -> None:
        store.put_bytes("f.txt", b"original")
        store.put_dir("d", make_model_dir(tmp_path))
        self.tamper(store, "f.txt", b"tampered")
        self.tamper(store, "d/config.json", b"{}")
        with pytest.raises(ArtifactCorrupted):
            store.get_bytes("f.txt")
        with pytest.raises(ArtifactCorrupted):
            store.local_file("f.txt")
        with pytest.raises(ArtifactCorrupted):
            store.get_bytes("d/config.json")
        with pytest.raises(ArtifactCorrupted):
            store.local_dir("d")

    def test_put_is_idempotent_and_the_hash_is_content_addressed(
        self, store: ArtifactStore, tmp_path: Path
    ) -> None:
        first = store.put_bytes("k/a.txt", b"same")
        again = store.put_bytes("k/a.txt", b"same")
        other = store.put_bytes("k/b.txt", b"same")
        assert first == again
        assert other.sha256 == first.sha256 and other.uri != first.uri
        src = make_model_dir(tmp_path)
        assert store.put_dir("d/1", src).sha256 == store.put_dir("d/2", src).sha256
        assert store.list("k") == ["k/a.txt", "k/b.txt"]

    def tamper(self, store: ArtifactStore, key: str, data: bytes) -> None:
        """Overwrite the raw bytes stored for ``key`` (a file, or a file inside a folder
        artifact) without updating its recorded hash. Every adapter's subclass provides it."""
        raise NotImplementedError(
            f"{type(self).__name__} must override tamper() to overwrite stored bytes behind "
            "the store's back (the corruption check needs it)"
        )
