"""The file access policy (issue 13, scope 3) through the real HTTP API: every path a caller
names — RAG sources, dataset.register, evaluation suites, model.register's artifact_uri — is
refused with 403 path_not_allowed outside $HERALD_HOME and security.files.allowed_roots, nothing
is stored, and the text of the file never comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald import Herald
from herald.api import create_app
from herald.bus import EventQuery
from herald.rag.service import RagService
from herald.settings import Settings

KEY = "test-key-for-the-file-policy-000"
CANARY = "CANARY-7f3a-secret-text-of-the-server"

# {home}: $HERALD_HOME, {outside}: a folder with the secret, outside every allowed root
HOSTILE = [
    "../../../../../../etc/passwd",
    "~/..",
    "~root/.ssh",
    "~root",
    "/etc/passwd",
    "/etc",
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "file://evil.example/etc/passwd",
    "local:///etc",
    "{outside}/secret.txt",
    "{outside}",
    "file://{outside}/secret.txt",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "{home}/%2e%2e/outside/secret.txt",
    "{home}/%252e%252e/outside/secret.txt",
    "file://{home}/%2e%2e/outside/secret.txt",
    "%25252525252e%25252525252e%25252525252f",
    "{home}/docs/ok.md\x00.txt",
    "{home}/docs/link-to-outside",
    "{home}/docs/link-to-secret.txt",
    "{home}/docs/link-to-etc/passwd",
    "{home}/admin.key",
    "{home}/herald.db",
    "{home}/monitoring",
    "simplecache::file:///etc/passwd",
    "zip://secret.txt::file://{outside}/secret.zip",
    "tar:///etc/passwd",
    "uploads:/../../etc/passwd",
    "uploads:/abcdefgh/../../../outside/secret.txt",
]


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "home"
    outside = tmp_path / "outside"
    docs = home / "docs"
    docs.mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text(f"the secret: {CANARY}\n")
    (docs / "ok.md").write_text("# Handbook\n\nVacation is 27 days a year.\n")
    (docs / "link-to-outside").symlink_to(outside, target_is_directory=True)
    (docs / "link-to-secret.txt").symlink_to(outside / "secret.txt")
    (docs / "link-to-etc").symlink_to("/etc", target_is_directory=True)
    return {"home": home, "outside": outside, "docs": docs}


@pytest.fixture
async def api(
    layout: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, Herald]]:
    """Default policy: $HERALD_HOME only (no listed folders, no working directory)."""
    monkeypatch.setenv("HERALD_SECURITY__FILES__ALLOWED_ROOTS", "[]")
    monkeypatch.delenv("HERALD_SECURITY__FILES__SERVER_CWD", raising=False)
    monkeypatch.setenv("HERALD_HOME", str(layout["home"]))
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    for var in ("HERALD_RAG__STORE_URL", "HERALD_RAG__CATALOG_URL", "HERALD_ARTIFACTS_URL"):
        monkeypatch.delenv(var, raising=False)
    RagService.reset()
    h = Herald(Settings(jobs={"lease_s": 10.0, "backoff_initial_s": 0.1}))
    await h.start()
    app = create_app(h, KEY, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=120,
        ) as c:
            r = await c.post("/v1/collections", json={"name": "c", "embedding_model": "hash:64"})
            assert r.status_code == 201, r.text
            yield c, h
    finally:
        await h.stop()
        RagService.reset()


def fill(raw: str, layout: dict[str, Path]) -> str:
    return raw.replace("{home}", str(layout["home"])).replace("{outside}", str(layout["outside"]))


def assert_refused(r: httpx.Response, layout: dict[str, Path], raw: str = "") -> None:
    assert CANARY not in r.text and "root:x:0:0" not in r.text
    if "\x00" in raw and r.status_code in (400, 422):
        return  # NUL may be refused earlier, at the JSON edge
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "path_not_allowed" and err["type"] == "permission_error"
    assert "security.files.allowed_roots" in err["message"]
    # the message names no server folder (the caller's own input aside) nor existence
    assert str(layout["outside"]) not in err["message"]
    assert "not found" not in err["message"] and "exist" not in err["message"]


async def stored(h: Herald, *types: str) -> list[Any]:
    return list(await h.log.query(EventQuery(types=list(types), limit=1000)))


@pytest.mark.parametrize("raw", HOSTILE)
async def test_rag_ingest_refuses(
    api: tuple[httpx.AsyncClient, Herald], layout: dict[str, Path], raw: str
) -> None:
    c, h = api
    r = await c.post("/v1/collections/c/documents", json={"source": fill(raw, layout)})
    assert_refused(r, layout, raw)
    assert await stored(h, "documents.ingest.requested") == []


@pytest.mark.parametrize("raw", HOSTILE)
async def test_dataset_register_refuses(
    api: tuple[httpx.AsyncClient, Herald], layout: dict[str, Path], raw: str
) -> None:
    c, h = api
    data = {"name": "leak", "source": fill(raw, layout)}
    r = await c.post("/v1/messages", json={"type": "dataset.register", "data": data})
    assert_refused(r, layout, raw)
    assert await stored(h, "dataset.register") == []


@pytest.mark.parametrize("raw", HOSTILE)
async def test_evaluation_suite_path_refuses(
    api: tuple[httpx.AsyncClient, Herald], layout: dict[str, Path], raw: str
) -> None:
    c, h = api
    body = {"target": "models:/nothing/1", "suite": fill(raw, layout)}
    assert_refused(await c.post("/v1/evaluations", json=body), layout, raw)
    r = await c.post("/v1/messages", json={"type": "evaluation.requested", "data": body})
    assert_refused(r, layout, raw)
    assert await stored(h, "evaluation.requested") == []


@pytest.mark.parametrize("raw", HOSTILE)
async def test_model_register_artifact_uri_refuses(
    api: tuple[httpx.AsyncClient, Herald], layout: dict[str, Path], raw: str
) -> None:
    c, h = api
    data = {"name": "leak", "artifact_uri": fill(raw, layout)}
    r = await c.post("/v1/messages", json={"type": "model.register", "data": data})
    assert_refused(r, layout, raw)
    assert await stored(h, "model.register") == []
    models = (await c.get("/v1/registry/models")).json()["data"]
    assert "leak" not in [m["name"] for m in models]


@pytest.mark.parametrize("raw", ["{outside}/secret.txt", "/etc/passwd", "~root/.ssh"])
async def test_job_submission_refuses(
    api: tuple[httpx.AsyncClient, Herald], layout: dict[str, Path], raw: str
) -> None:
    c, _ = api
    body = {"name": "rag.ingest", "params": {"collection": "c", "source": fill(raw, layout)}}
    assert_refused(await c.post("/v1/jobs", json=body), layout, raw)


async def test_suite_in_home_naming_a_dataset_outside_is_refused(
    api: tuple[httpx.AsyncClient, Herald], layout: dict[str, Path]
) -> None:
    c, _ = api
    suite = layout["home"] / "suites" / "leak.yaml"
    suite.parent.mkdir()
    suite.write_text(
        f"name: leak\ndataset: {layout['outside']}/secret.jsonl\n"
        "engines: [{engine: reference, metrics: [exact_match]}]\n"
    )
    (layout["outside"] / "secret.jsonl").write_text(f'{{"id": "{CANARY}"}}\n')
    body = {"target": "models:/nothing/1", "suite": str(suite)}
    assert_refused(await c.post("/v1/evaluations", json=body), layout)


async def test_remote_and_registry_references_are_not_files(
    api: tuple[httpx.AsyncClient, Herald],
) -> None:
    """s3:// and other stores are not this server's files: the file policy lets them through
    (their own store or the egress policy answers)."""
    c, _ = api
    data = {"name": "remote", "artifact_uri": "s3://bucket/models/remote"}
    r = await c.post("/v1/messages", json={"type": "model.register", "data": data})
    assert r.status_code == 202, r.text


async def outcome(h: Herald, correlationid: str, done: str, timeout: float = 120) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        events = await h.log.query(
            EventQuery(types=[done, "job.failed"], correlationid=correlationid, limit=100)
        )
        final = [e for e in events if not e.data.get("will_retry")]
        if final:
            return final[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {done} within {timeout} s")


@pytest.mark.slow
async def test_folder_in_home_with_links_out_ingests_only_its_own_files(
    api: tuple[httpx.AsyncClient, Herald], layout: dict[str, Path]
) -> None:
    """An allowed folder holding symlinks to the outside: its own file is ingested, the links
    (to a folder, to a file, to /etc) are skipped when walking, and no query finds the secret."""
    c, h = api
    r = await c.post("/v1/collections/c/documents", json={"source": str(layout["docs"])})
    assert r.status_code == 202, r.text
    got = await outcome(h, r.json()["correlationid"], "documents.ingested")
    assert got.type == "documents.ingested", got.data
    assert got.data["counts"] == {"ingested": 1}, got.data
    for q in ("secret", CANARY, "root"):
        hits = await c.post("/v1/collections/c/query", json={"query": q, "k": 10})
        assert hits.status_code == 200 and CANARY not in hits.text and "root:x:0" not in hits.text
    docs = (await c.get("/v1/collections/c/documents")).json()["data"]
    assert [Path(d["source"]).name for d in docs] == ["ok.md"]
