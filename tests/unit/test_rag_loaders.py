"""Loaders (txt, md, html, pdf, jsonl) and sources (folders, links, fsspec URLs)."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pytest

from herald.errors import NotFound
from herald.rag.errors import DocumentError
from herald.rag.ingest.loaders import (
    load_html,
    load_jsonl,
    load_markdown,
    load_pdf,
    load_text,
    loader_for,
)
from herald.rag.ingest.sources import list_sources

ROOT = Path(__file__).resolve().parents[2]
HANDBOOK = ROOT / "examples" / "rag" / "handbook"


def test_markdown_title_front_matter_and_metadata() -> None:
    md = b"---\ntitle: Leave\ndept: hr\nyear: 2024\n---\n# Ignored heading\nbody"
    [d] = load_markdown(md, "file:///x/leave.md")
    assert d.metadata["title"] == "Leave" and d.metadata["dept"] == "hr"
    assert d.metadata["year"] == 2024 and d.metadata["filename"] == "leave.md"
    assert d.text.startswith("# Ignored heading") and d.markdown
    [d2] = load_markdown(b"intro\n## Second level\ntext", "s3://b/notes.md")
    assert d2.metadata["title"] == "Second level" and d2.metadata["doc_type"] == "markdown"


def test_html_drops_scripts_and_styles_and_keeps_structure() -> None:
    [d] = load_html((HANDBOOK / "travel.html").read_bytes(), "file:///travel.html")
    assert d.metadata["title"] == "Business travel policy"
    assert "console.log" not in d.text and "font-family" not in d.text
    assert "## Flights" in d.text and "Compass Travel" in d.text


def test_pdf_pages_and_corrupt_pdf() -> None:
    [d] = load_pdf((HANDBOOK / "data-retention.pdf").read_bytes(), "file:///r.pdf")
    assert [m["page"] for _, m in d.parts] == [1, 2, 3]
    assert d.metadata["title"] == "Data retention policy" and d.metadata["pages"] == 3
    assert "seven years" in d.parts[0][0]
    with pytest.raises(DocumentError, match="corrupt or unreadable PDF"):
        load_pdf(b"%PDF-1.4\n garbage", "file:///bad.pdf")


def test_text_empty_binary_and_encodings() -> None:
    [d] = load_text("Café rules\nbe nice".encode("cp1252"), "file:///c.txt")
    assert d.metadata["title"] == "Café rules"
    with pytest.raises(DocumentError, match="empty"):
        load_text(b"  \n\n ", "file:///e.txt")
    with pytest.raises(DocumentError, match="binary"):
        load_text(b"\x00\x01\x02", "file:///b.txt")


def test_jsonl_records_become_documents_with_fields() -> None:
    lines = [
        {"id": "faq-1", "text": "Reset your password in Vaultwarden.", "topic": "it", "views": 3},
        {"content": "Second record"},
        "not an object",
        {"id": "faq-1", "text": "duplicate"},
        {"text": ""},
    ]
    data = "\n".join(json.dumps(x) for x in lines).encode() + b"\n{bad json\n"
    docs = load_jsonl(data, "file:///faq.jsonl")
    assert [d.ref_doc_id for d in docs] == ["file:///faq.jsonl#faq-1", "file:///faq.jsonl#2"]
    assert docs[0].metadata["topic"] == "it" and docs[0].metadata["views"] == 3
    assert len(docs[0].errors) == 4  # not an object, duplicate, empty text, bad JSON
    with pytest.raises(DocumentError, match="no usable records"):
        load_jsonl(b'{"x": 1}\n', "file:///none.jsonl")


def test_loader_for_by_suffix() -> None:
    assert loader_for("A.MD") is load_markdown and loader_for("x.htm") is load_html
    assert loader_for("x.docx") is None


def test_folder_listing_skips_hidden_files_and_links_out(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.md").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / ".hidden.md").write_text("h")
    (root / ".git" / "c.md").write_text("c")
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    (root / "link.txt").symlink_to(outside)
    names = [f.name for f in list_sources(str(root))]
    assert names == ["a.md", "b.txt"]
    assert [f.name for f in list_sources(str(root), recursive=False)] == ["a.md"]
    [one] = list_sources(str(root / "a.md"))
    assert one.uri == (root / "a.md").resolve().as_uri()
    with pytest.raises(NotFound):
        list_sources(str(tmp_path / "missing"))


def test_fsspec_urls() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/kb/one.md", b"# One\ntext")
    fs.pipe("/kb/deep/two.txt", b"two")
    files = list_sources("memory://kb")
    assert [f.name for f in files] == ["two.txt", "one.md"]  # sorted by path
    assert files[1].read(1000) == b"# One\ntext"
    with pytest.raises(DocumentError, match="limit"):
        files[1].read(3)
    fs.rm("/kb", recursive=True)
