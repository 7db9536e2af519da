"""Ingesting from an S3 prefix (a real S3 endpoint: moto_server, via s3fs/fsspec)."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald.rag.service import RagService
from herald.settings import RagSettings

importlib.import_module("s3fs")
HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "rag" / "handbook"


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object]]:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # read by botocore, so by s3fs
    name = "rag" + uuid.uuid4().hex[:12]
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    for f in ("travel.html", "benefits.md", "data-retention.pdf"):
        s3.put_object(Bucket=name, Key=f"handbook/{f}", Body=(HANDBOOK / f).read_bytes())
    s3.put_object(Bucket=name, Key="handbook/.hidden.md", Body=b"# hidden")
    yield name, s3


def test_ingest_an_s3_prefix_then_skip_and_prune(
    bucket: tuple[str, object], tmp_path: Path
) -> None:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    name, s3 = bucket
    svc = RagService(
        RagSettings(
            store_url=f"local://{tmp_path / 'vs'}",
            catalog_url=f"sqlite:///{tmp_path / 'c.db'}",
            embedding_model="hash:128",
        ),
        home=tmp_path,
    )
    try:
        svc.create_collection("kb")
        report = svc.ingest("kb", f"s3://{name}/handbook")
        assert report.counts == {"ingested": 3}
        refs = sorted(d.ref_doc_id for d in svc.documents("kb"))
        assert refs == [
            f"s3://{name}/handbook/{f}"
            for f in ("benefits.md", "data-retention.pdf", "travel.html")
        ]
        hit = svc.retrieve("kb", "hotel budget per night", k=1)[0]
        assert hit.source == f"s3://{name}/handbook/travel.html"
        pages = svc.retrieve("kb", "customer data deleted", k=1, filters={"doc_type": "pdf"})
        assert pages[0].page == 2

        assert svc.ingest("kb", f"s3://{name}/handbook").counts == {"skipped": 3}
        s3.delete_object(Bucket=name, Key="handbook/benefits.md")  # type: ignore[attr-defined]
        s3fs.S3FileSystem.clear_instance_cache()  # forget s3fs's cached listing
        pruned = svc.ingest("kb", f"s3://{name}/handbook", prune=True)
        assert pruned.deleted == [f"s3://{name}/handbook/benefits.md"]
        assert len(svc.documents("kb")) == 2
    finally:
        svc.catalog.close()
        RagService.reset()
