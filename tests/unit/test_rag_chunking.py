"""Chunking: markdown structure, token budgets, overlap."""

from __future__ import annotations

import itertools

import pytest

from herald.rag.chunking import Chunker, markdown_sections
from herald.rag.embeddings.base import approx_tokens


def test_markdown_sections_follow_heading_paths_and_skip_fenced_code() -> None:
    text = (
        "# Guide\nintro\n## Install\nrun it\n```\n# not a heading\n```\n### Linux\napt\n## Use\nok"
    )
    secs = markdown_sections(text)
    assert [s.path for s in secs] == [
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Install", "Linux"),
        ("Guide", "Use"),
    ]
    assert "# not a heading" in secs[1].text


def test_chunks_stay_within_budget_and_overlap() -> None:
    words = " ".join(f"w{i}" for i in range(1000))
    chunks = Chunker(size=60, overlap=10).split(words)
    assert len(chunks) > 10
    assert all(approx_tokens(c.text) <= 60 for c in chunks)
    for a, b in itertools.pairwise(chunks):
        shared = b.text.split()[:10]
        assert a.text.split()[-10:] == shared  # the next chunk starts with the previous tail
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    paras = [f"Paragraph {i} says one short thing." for i in range(6)]
    chunks = Chunker(size=20, overlap=0).split("\n\n".join(paras))
    assert all(c.text.count("Paragraph") == 2 for c in chunks)  # two 8-token paragraphs each


def test_markdown_chunks_carry_their_section() -> None:
    md = "# Leave\n\n## Sick\nCall before 10:00.\n\n## Vacation\n27 days."
    chunks = Chunker(size=50, overlap=5).split(md, markdown=True)
    assert [(c.section, c.text) for c in chunks] == [
        ("Leave > Sick", "# Leave\n## Sick\nCall before 10:00."),  # a bare heading is carried
        ("Leave > Vacation", "## Vacation\n27 days."),
    ]
    assert [c.text for c in Chunker().split("# Only a title", markdown=True)] == ["# Only a title"]


def test_custom_token_counter_and_bad_config() -> None:
    chunks = Chunker(size=10, overlap=0, count=len).split("abcdefghij klmnopqrst uvw")
    assert all(len(c.text) <= 10 for c in chunks)
    with pytest.raises(ValueError):
        Chunker(size=4)
    with pytest.raises(ValueError):
        Chunker(size=20, overlap=15)
    assert Chunker().split("   \n\n ") == []
