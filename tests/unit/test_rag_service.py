"""The RAG service end to end in-process: hashing embedder, local store, SQLite catalog."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald.rag.errors import (
    CollectionExists,
    CollectionNotFound,
    DimensionMismatch,
    InvalidFilter,
    RagError,
)
from herald.rag.retrieval import RetrievedChunk, rrf
from herald.rag.service import RagService
from herald.rag.vectorstores import Hit
from herald.settings import RagSettings

HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "rag" / "handbook"


@pytest.fixture(params=["local", pytest.param("postgres", marks=pytest.mark.postgres)])
def svc(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RagService]:
    """Embedded defaults, or the scale-out setup: pgvector store and catalog in PostgreSQL."""
    if request.param == "local":
        store, catalog = f"local://{tmp_path / 'vs'}", f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        store = catalog = str(request.getfixturevalue("fresh_postgres_url"))
    s = RagService(
        RagSettings(store_url=store, catalog_url=catalog, embedding_model="hash:256"),
        home=tmp_path,
    )
    yield s
    s.catalog.close()
    RagService.reset()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    shutil.copytree(HANDBOOK, d)
    return d


def test_collection_crud_and_errors(svc: RagService) -> None:
    c = svc.create_collection("kb", chunk_size=120, chunk_overlap=20, description="d")
    assert (c.embedding_model, c.dimension, c.chunk_size) == ("hash:256", 256, 120)
    assert [x.name for x in svc.list_collections()] == ["kb"]
    with pytest.raises(CollectionExists):
        svc.create_collection("kb")
    with pytest.raises(RagError, match="chunk_overlap"):
        svc.create_collection("other", chunk_size=100, chunk_overlap=80)
    svc.delete_collection("kb")
    with pytest.raises(CollectionNotFound):
        svc.get_collection("kb")
    with pytest.raises(CollectionNotFound):
        svc.retrieve("kb", "anything")


def test_ingest_skip_update_delete(svc: RagService, docs: Path) -> None:
    svc.create_collection("kb")
    first = svc.ingest("kb", str(docs))
    assert first.counts == {"ingested": 16} and first.chunks > 16
    again = svc.ingest("kb", str(docs))
    assert again.counts == {"skipped": 16} and again.chunks == 0

    vac = docs / "vacation-policy.md"
    vac.write_text(vac.read_text().replace("27 days", "31 days"))
    upd = svc.ingest("kb", str(docs))
    assert upd.counts == {"skipped": 15, "updated": 1}
    texts = [h.text for h in svc.retrieve("kb", "paid vacation days per year", k=3)]
    assert any("31 days" in t for t in texts) and not any("27 days" in t for t in texts)

    ref = vac.resolve().as_uri()
    n_chunks = next(d.chunks for d in svc.documents("kb") if d.ref_doc_id == ref)
    assert svc.delete_documents("kb", [ref]) == {"documents": 1, "chunks": n_chunks}
    hits = svc.retrieve("kb", "paid vacation days per year", k=10)
    assert ref not in {h.ref_doc_id for h in hits}
    assert len(svc.documents("kb")) == 15


def test_bad_files_are_reported_and_the_batch_continues(svc: RagService, tmp_path: Path) -> None:
    d = tmp_path / "mixed"
    d.mkdir()
    (d / "good.md").write_text("# Good\nThe cafeteria opens at eight.")
    (d / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    (d / "empty.txt").write_text("   \n")
    (d / "slides.pptx").write_bytes(b"PK\x03\x04")
    svc.create_collection("kb")
    r = svc.ingest("kb", str(d))
    status = {Path(i.source).name: i.status for i in r.items}
    assert status == {
        "broken.pdf": "failed",
        "empty.txt": "empty",
        "good.md": "ingested",
        "slides.pptx": "unsupported",
    }
    assert all(i.error for i in r.items if i.status != "ingested")
    assert svc.retrieve("kb", "cafeteria", k=1)[0].title == "Good"


def test_filters_custom_metadata_and_unknown_field(svc: RagService, docs: Path) -> None:
    svc.create_collection("kb")
    svc.ingest("kb", str(docs / "travel.html"), metadata={"dept": "finance", "level": 2})
    svc.ingest("kb", str(docs / "it-security.md"), metadata={"dept": "it", "level": 5})
    svc.ingest("kb", str(docs / "data-retention.pdf"), metadata={"dept": "legal", "level": 3})
    for mode in ("dense", "keyword", "hybrid"):
        hits = svc.retrieve(
            "kb",
            "policy hotel password data",
            k=20,
            mode=mode,
            filters={"dept": {"$in": ["it", "legal"]}, "level": {"$gte": 4}},
        )
        assert hits and {h.metadata["dept"] for h in hits} == {"it"}, mode
    pdf = svc.retrieve("kb", "customer data deleted", k=3, filters={"page": 2})
    assert pdf and all(h.page == 2 for h in pdf)
    with pytest.raises(InvalidFilter, match="unknown filter field 'colour'"):
        svc.retrieve("kb", "x", filters={"colour": "red"})


def test_pii_redaction_at_ingestion(svc: RagService, tmp_path: Path) -> None:
    f = tmp_path / "contacts.txt"
    f.write_text("Contacts\nWrite to jane.doe@example.com or call +44 20 7946 0958.")
    svc.create_collection("kb")
    r = svc.ingest("kb", str(f), redact_pii=True)
    assert r.pii == {"email": 1, "phone": 1}
    [hit] = svc.retrieve("kb", "write call contacts", k=1)
    assert "[EMAIL]" in hit.text and "example.com" not in hit.text
    # the same file without redaction is a different version, not "unchanged"
    assert svc.ingest("kb", str(f)).counts == {"updated": 1}


def test_prune_removes_documents_gone_from_the_folder(svc: RagService, docs: Path) -> None:
    svc.create_collection("kb")
    svc.ingest("kb", str(docs))
    (docs / "equipment.txt").unlink()
    r = svc.ingest("kb", str(docs), prune=True)
    assert [Path(x).name for x in r.deleted] == ["equipment.txt"]
    assert len(svc.documents("kb")) == 15


def test_jsonl_records_single_file_ref_doc_id(svc: RagService, tmp_path: Path) -> None:
    f = tmp_path / "faq.jsonl"
    f.write_text('{"id": "q1", "text": "Printers are on floor two.", "topic": "office"}\n')
    svc.create_collection("kb")
    svc.ingest("kb", str(f))
    [d] = svc.documents("kb")
    assert d.ref_doc_id.endswith("faq.jsonl#q1") and d.metadata["topic"] == "office"
    g = tmp_path / "note.md"
    g.write_text("# Note\nhello")
    svc.ingest("kb", str(g), ref_doc_id="note-1")
    assert "note-1" in {x.ref_doc_id for x in svc.documents("kb")}
    with pytest.raises(RagError, match="single file"):
        svc.ingest("kb", str(tmp_path), ref_doc_id="x")


def test_reindex_with_another_dimension_and_mismatch_guard(svc: RagService, docs: Path) -> None:
    svc.create_collection("kb")
    svc.ingest("kb", str(docs / "benefits.md"))
    before = svc.get_collection("kb").chunks
    col = svc.reindex("kb", embedding_model="hash:64")
    assert (col.embedding_model, col.dimension, col.chunks) == ("hash:64", 64, before)
    assert svc.retrieve("kb", "pension match", k=1)[0].metadata["filename"] == "benefits.md"
    store = svc.store_for(col)
    with pytest.raises(DimensionMismatch):
        store.search("kb", [0.1] * 256, 3)
    svc.catalog.update("kb", embedding_model="hash:32")  # catalog and store disagree
    with pytest.raises(DimensionMismatch, match="re-index"):
        svc.retrieve("kb", "pension")


def test_retrieval_modes_scores_and_mmr(svc: RagService, docs: Path) -> None:
    svc.create_collection("kb", chunk_size=40, chunk_overlap=8)
    svc.ingest("kb", str(docs))
    dense = svc.retrieve("kb", "home office stipend", k=5, mode="dense")
    assert dense[0].scores.keys() == {"dense"} and -1 <= dense[0].score <= 1
    kw = svc.retrieve("kb", "home office stipend", k=5, mode="keyword")
    assert kw[0].metadata["filename"] == "remote-work.md" and kw[0].score > 0
    hy = svc.retrieve("kb", "home office stipend", k=5)
    assert [h.score for h in hy] == sorted((h.score for h in hy), reverse=True)
    plain = svc.retrieve("kb", "vacation", k=4, mode="dense")
    diverse = svc.retrieve("kb", "vacation", k=4, mode="dense", mmr=True, mmr_lambda=0.3)
    assert len(diverse) == 4
    assert len({h.ref_doc_id for h in diverse}) >= len({h.ref_doc_id for h in plain})
    with pytest.raises(RagError, match="empty"):
        svc.retrieve("kb", "  ")
    with pytest.raises(RagError, match="mode"):
        svc.retrieve("kb", "x", mode="fuzzy")  # type: ignore[arg-type]


def test_rerank_hook_reorders(svc: RagService, docs: Path) -> None:
    svc.create_collection("kb")
    svc.ingest("kb", str(docs))

    def by_length(query: str, hits: list[RetrievedChunk]) -> list[RetrievedChunk]:
        return sorted(hits, key=lambda h: len(h.text))

    hits = svc.retrieve("kb", "laptop", k=3, rerank=by_length)
    assert [len(h.text) for h in hits] == sorted(len(h.text) for h in hits)


def test_rrf_fuses_rankings() -> None:
    def hit(i: str) -> Hit:
        return Hit(i, i, i, 0.0, {})

    fused = rrf([[hit("a"), hit("b"), hit("c")], [hit("c"), hit("a")]])
    assert [h.id for h, _ in fused] == ["a", "c", "b"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_served_reranker_needs_configuration(svc: RagService) -> None:
    with pytest.raises(RagError, match="HERALD_RAG__RERANK_URL"):
        svc.reranker()
    svc.settings = svc.settings.model_copy(update={"rerank_url": "http://127.0.0.1:9/v1"})
    from herald.rag.rerank import HttpReranker

    assert isinstance(svc.reranker(), HttpReranker) and svc.reranker() is svc.reranker()


def test_on_postgresql_the_defaults_are_that_database_so_every_role_shares_collections(
    tmp_path: Path,
) -> None:
    from herald.rag.service import default_urls

    pg = "postgresql://u:p@db:5432/herald"
    assert default_urls(RagSettings(), tmp_path, pg) == (pg, pg)
    store, catalog = default_urls(RagSettings(), tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    assert store.startswith("local://") and catalog == f"sqlite:///{tmp_path / 'rag/catalog.db'}"
    assert default_urls(RagSettings(), tmp_path, "memory://")[0].startswith("local://")
    explicit = RagSettings(store_url="memory://", catalog_url=f"sqlite:///{tmp_path / 'c.db'}")
    assert default_urls(explicit, tmp_path, pg) == ("memory://", f"sqlite:///{tmp_path / 'c.db'}")
