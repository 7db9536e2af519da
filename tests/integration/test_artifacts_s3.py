"""S3-only behaviour of the artifact store against a real S3 endpoint (moto_server, via s3fs);
the shared artifact-store contract runs in tests/contract/test_artifact_stores.py."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from herald.artifacts import open_artifact_store
from herald.testing.artifacts import make_model_dir

importlib.import_module("s3fs")


def test_folder_without_manifest_is_absent(s3_url: str, tmp_path: Path) -> None:
    from herald.artifacts.s3 import S3ArtifactStore

    store = open_artifact_store(s3_url, cache_dir=tmp_path / "cache")
    assert isinstance(store, S3ArtifactStore)
    # what a crashed upload leaves behind: files but no manifest
    store.fs.pipe_file(f"{store.base}/models/m/1/config.json", b"{}")
    assert not store.exists("models/m/1")
    assert store.list() == []
    # a retried upload over the leftovers succeeds
    store.put_dir("models/m/1", make_model_dir(tmp_path))
    assert store.exists("models/m/1")


def test_local_dir_cache_is_reused_and_verified(s3_url: str, tmp_path: Path) -> None:
    store = open_artifact_store(s3_url, cache_dir=tmp_path / "cache")
    ref = store.put_dir("models/m/1", make_model_dir(tmp_path))
    first = store.local_dir("models/m/1")
    assert first.is_relative_to(tmp_path / "cache")
    assert first.name == ref.sha256
    assert store.local_dir("models/m/1") == first
    assert (first / "model.safetensors").read_bytes().endswith(b"weights")
    uri = store.uri("models/m/1")
    assert uri.startswith("s3://") and "endpoint_url" not in uri
    assert store.key_of(uri) == "models/m/1"


def test_unknown_option_refused(tmp_path: Path) -> None:
    from herald.artifacts import ArtifactError

    with pytest.raises(ArtifactError, match="unknown S3 option"):
        open_artifact_store("s3://bucket/p?endpoint=x", cache_dir=tmp_path)


def test_a_data_set_in_the_s3_store_is_read_through_the_store(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dataset.register on another host reads a retraining's data set by its store URI: the
    endpoint lives in the store URL's query, which a bare fsspec ``s3://`` URL does not carry."""
    from herald.datasets.jobs import _readable
    from herald.datasets.loader import read_table

    monkeypatch.setenv("HERALD_ARTIFACTS_URL", s3_url)
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "other-host"))
    store = open_artifact_store(s3_url, cache_dir=tmp_path / "cache")
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    uri = store.put_bytes("monitoring/datasets/t-1.jsonl", (json.dumps(row) + "\n").encode()).uri
    local = _readable(uri, store)
    assert local != uri and local.endswith("t-1.jsonl")
    assert read_table(local).rows == [row]
    assert _readable("/plain/path.jsonl", store) == "/plain/path.jsonl"  # not a URI: unchanged
