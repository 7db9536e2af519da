"""The artifact-store kit (herald.testing.ArtifactStoreContract) over every built-in adapter:
a local folder and S3 (moto_server, via s3fs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.artifacts import ArtifactStore, open_artifact_store
from herald.testing import ArtifactStoreContract


class TestLocalStore(ArtifactStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ArtifactStore:
        return open_artifact_store((tmp_path / "store").as_uri(), cache_dir=tmp_path / "cache")

    def tamper(self, store: ArtifactStore, key: str, data: bytes) -> None:
        from herald.artifacts.local import LocalArtifactStore

        assert isinstance(store, LocalArtifactStore)
        (store.root / key).write_bytes(data)


class TestS3Store(ArtifactStoreContract):
    @pytest.fixture
    def store(self, s3_url: str, tmp_path: Path) -> ArtifactStore:
        return open_artifact_store(s3_url, cache_dir=tmp_path / "cache")

    def tamper(self, store: ArtifactStore, key: str, data: bytes) -> None:
        from herald.artifacts.s3 import S3ArtifactStore

        assert isinstance(store, S3ArtifactStore)
        store.fs.pipe_file(f"{store.base}/{key}", data)
