"""Regression of the file-read attack on a real `herald up` (issue 13, scope 3): a caller can no
longer make the server ingest /etc/passwd or a secret outside its roots; the README quickstart
(`herald rag ingest examples/rag/handbook` against `make up` from the repo root, loopback)
still works; and the CLI uploads a local folder the server may not read."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from herald.cli.main import app

pytestmark = pytest.mark.slow
CANARY = "CANARY-e2e-5b1d-not-for-callers"


def wait_for(c: httpx.Client, correlationid: str, done: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        params = {"type": [done, "job.failed"], "correlationid": correlationid}
        got = [
            e
            for e in c.get("/v1/messages", params=params).json()["data"]
            if not e["data"].get("will_retry")
        ]
        if got:
            return got[0]
        time.sleep(0.3)
    raise AssertionError(f"no {done} within {timeout} s")


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_up_refuses_files_outside_roots_and_the_cli_uploads(
    server_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{CANARY}\n")
    server = server_factory([], HERALD_SECURITY__FILES__ALLOWED_ROOTS="[]")
    server.start(timeout=60)
    with server.client() as c:
        r = c.post("/v1/collections", json={"name": "hb", "embedding_model": "hash:128"})
        assert r.status_code == 201, r.text
        for source in ("/etc/passwd", "file:///etc/passwd", str(outside), "../../../etc"):
            r = c.post("/v1/collections/hb/documents", json={"source": source})
            assert r.status_code == 403, (source, r.text)
            assert r.json()["error"]["code"] == "path_not_allowed"
            assert "security.files.allowed_roots" in r.json()["error"]["message"]
        assert (
            c.get("/v1/messages", params={"type": "documents.ingest.requested"}).json()["data"]
            == []
        )

        # the quickstart: a path relative to the working directory of a loopback `herald up`
        r = c.post("/v1/collections/hb/documents", json={"source": "examples/rag/handbook"})
        assert r.status_code == 202, r.text
        done = wait_for(c, r.json()["correlationid"], "documents.ingested")
        assert done["type"] == "documents.ingested", done["data"]
        assert done["data"]["counts"] == {"ingested": 16}

    # the CLI: a folder the server may not read is uploaded (HERALD_HOME/uploads) and ingested
    docs = tmp_path / "mydocs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Parking\n\nVisitors park on level 3 of the garage.\n")
    (docs / "sub" / "b.txt").write_text("The cafeteria opens at 7:30 on weekdays.\n" * 4000)
    (docs / "leak.txt").symlink_to(outside / "secret.txt")
    monkeypatch.setenv("HERALD_URL", server.url)
    monkeypatch.setenv("HERALD_API_KEY", server.key)
    monkeypatch.setenv("HERALD_HOME", str(server.home))
    refused = cli("rag", "ingest", str(docs), "-c", "hb", "--no-upload", code=1)
    assert "security.files.allowed_roots" in " ".join(refused.split())
    report = json.loads(cli("rag", "ingest", str(docs), "-c", "hb", "--json"))
    assert report["counts"] == {"ingested": 2}, report
    again = json.loads(cli("rag", "ingest", str(docs), "-c", "hb", "--json"))
    assert again["counts"] == {"skipped": 2}, again  # same upload folder: same document ids
    hits = json.loads(cli("rag", "query", "where do visitors park?", "-c", "hb", "--json"))
    assert any("level 3" in h["text"] for h in hits)
    assert not any(CANARY in h["text"] for h in hits)
    assert (server.home / "uploads").is_dir()

    # the same for a data set file
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"q{i}"},
                        {"role": "assistant", "content": f"a{i}"},
                    ]
                }
            )
            for i in range(5)
        )
        + "\n"
    )
    out = cli("datasets", "register", "uploaded", str(rows), "--json")
    assert json.loads(out)["rows"] == 5
