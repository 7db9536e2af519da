"""`herald rag …` against a real `herald up` (REST, the rag.ingest job in a subprocess)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from herald.cli.main import app
from tests.e2e.conftest import Server

pytestmark = pytest.mark.slow
HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "rag" / "handbook"


def run(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_create_ingest_query_docs_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(HANDBOOK, docs)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 nope")
    monkeypatch.delenv("HERALD_RAG__STORE_URL", raising=False)
    server = Server(tmp_path / "home", [])
    server.start(timeout=60)
    try:
        monkeypatch.setenv("HERALD_URL", server.url)
        monkeypatch.setenv("HERALD_API_KEY", server.key)
        monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
        out = run("rag", "create", "hb", "--embedding-model", "hash:256", "--chunk-size", "120")
        assert "created hb (hash:256, 256 dims, chunks of 120 tokens" in " ".join(out.split())
        run("rag", "create", "hb", code=1)  # exists

        out = run("rag", "ingest", str(docs), "--collection", "hb", "--meta", "team=people")
        flat = out.replace("\n", "")
        assert "16 ingested" in flat and "1 failed" in flat and "broken.pdf" in flat
        again = json.loads(run("rag", "ingest", str(docs), "-c", "hb", "--json"))
        assert again["counts"] == {"failed": 1, "skipped": 16}

        hits = json.loads(
            run("rag", "query", "home office stipend", "-c", "hb", "-k", "3", "--json")
        )
        assert hits[0]["metadata"]["filename"] == "remote-work.md"
        assert hits[0]["metadata"]["team"] == "people"
        text = run("rag", "query", "hotel price per night", "-c", "hb", "--mode", "keyword")
        assert "[1]" in text and "travel.html" in text
        bad = CliRunner().invoke(app, ["rag", "query", "x", "-c", "hb", "--filter", '{"nope": 1}'])
        assert bad.exit_code == 1 and "unknown filter field 'nope'" in bad.output
        missing = CliRunner().invoke(app, ["rag", "query", "x", "-c", "nope"])
        assert missing.exit_code == 1 and "does not exist" in missing.output

        listing = json.loads(run("rag", "docs", "hb", "--json"))
        assert len(listing) == 16
        ref = next(d["ref_doc_id"] for d in listing if d["ref_doc_id"].endswith("travel.html"))
        assert "deleted 1 documents" in run("rag", "docs", "hb", "--delete", ref)
        hits = json.loads(run("rag", "query", "hotel price per night", "-c", "hb", "--json"))
        assert all(h["ref_doc_id"] != ref for h in hits)

        cols = json.loads(run("rag", "list", "--json"))
        assert [(c["name"], c["documents"]) for c in cols] == [("hb", 15)]
        run("rag", "delete", "hb", "--yes")
        assert "no collections yet" in run("rag", "list")

        # ingesting into a missing collection creates it (bundled model) unless --no-create
        one = tmp_path / "one"
        one.mkdir()
        (one / "note.md").write_text("# Parking\nBicycles go in the basement.")
        no = CliRunner().invoke(app, ["rag", "ingest", str(one), "-c", "fresh", "--no-create"])
        assert no.exit_code == 1 and "does not exist" in no.output
        out = run("rag", "ingest", str(one), "-c", "fresh")
        assert "created collection fresh (all-minilm-l6-v2, 384 dims)" in out
        assert "1 ingested" in out
    finally:
        server.stop()
