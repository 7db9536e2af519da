"""The S3 artifact store against a real S3 endpoint (moto_server on a free port), via s3fs."""

from __future__ import annotations

import importlib
import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald.artifacts import ArtifactStore, open_artifact_store
from tests.unit.test_artifacts_contract import ArtifactStoreContract, make_model_dir

importlib.import_module("s3fs")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        found = shutil.which("moto_server")
        if found is None:
            pytest.fail(
                'moto_server not installed: pip install "moto[server]" (make test installs it)'
            )
        exe = Path(found)
    port = _free_port()
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def s3_url(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = "b" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return f"s3://{bucket}/herald?endpoint_url={s3_endpoint}"


class TestS3Store(ArtifactStoreContract):
    @pytest.fixture
    def store(self, s3_url: str, tmp_path: Path) -> ArtifactStore:
        return open_artifact_store(s3_url, cache_dir=tmp_path / "cache")

    def tamper(self, store: ArtifactStore, key: str, data: bytes) -> None:
        from herald.artifacts.s3 import S3ArtifactStore

        assert isinstance(store, S3ArtifactStore)
        store.fs.pipe_file(f"{store.base}/{key}", data)


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
    local = _readable(uri)
    assert local != uri and local.endswith("t-1.jsonl")
    assert read_table(local).rows == [row]
    assert _readable("/plain/path.jsonl") == "/plain/path.jsonl"  # not a URI: unchanged
