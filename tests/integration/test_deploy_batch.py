"""Batch inference: OpenAI Batch JSONL in the artifact store → ``POST /v1/batches`` →
``batch.requested`` → job ``serving.batch`` → ``batch.completed`` with the results JSONL; bad
lines are reported per line; ``GET /v1/batches/{id}`` reads the batch's own flow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.api import create_app
from herald.bootstrap import Herald
from herald.serving.batch.job import BatchInputError, parse_batch
from herald.settings import Settings

KEY = "k-batch"
REPLY = "Batch says hi"
EP = "/v1/chat/completions"


def chat(cid: Any, model: str = "fake", **body: Any) -> str:
    msg = [{"role": "user", "content": f"question {cid}"}]
    return json.dumps(
        {
            "custom_id": cid,
            "method": "POST",
            "url": EP,
            "body": {"model": model, "messages": msg, **body},
        }
    )


@pytest.fixture
async def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Herald, httpx.AsyncClient]]:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path))  # the job opens the artifact store itself
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        serving={
            "bundled": False,
            "registry": False,
            "models": {"fake": {"backend": "fake", "model": "f", "options": {"reply": REPLY}}},
        },
    )
    h = Herald(settings)
    app = create_app(h, KEY, manage_lifecycle=False)
    await h.start()
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://herald", headers=headers
    ) as http:
        yield h, http
    await h.stop()


async def wait_done(http: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    for _ in range(1500):
        r = await http.get(f"/v1/batches/{batch_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("completed", "failed", "cancelled"):
            return dict(r.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"batch {batch_id} did not finish")


async def test_batch_results_in_input_order_with_bad_lines_reported_per_line(
    env: tuple[Herald, httpx.AsyncClient],
) -> None:
    h, http = env
    lines = [
        chat("a"),
        "{not json",
        chat("b", max_tokens=2),
        chat("a"),  # duplicate custom_id
        chat("c", model="missing"),  # the gateway's 404, kept per line
        chat("d", temperature=9),  # the gateway's 400, naming the parameter
        json.dumps({"custom_id": "e", "url": "/v1/embeddings", "body": {}}),
        json.dumps({"method": "POST", "url": EP, "body": {}}),  # no custom_id
        "",
        chat("f"),
    ]
    ref = h.artifacts.put_bytes("inputs/batch.jsonl", "\n".join(lines).encode())
    r = await http.post("/v1/batches", json={"input_file_id": ref.uri, "endpoint": EP})
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["object"] == "batch" and created["status"] == "validating"
    done = await wait_done(http, created["id"])
    assert done["status"] == "completed", done
    assert done["request_counts"] == {"total": 9, "completed": 3, "failed": 6}
    out = h.artifacts.get_bytes(h.artifacts.key_of(done["output_file_id"])).decode()
    results = [json.loads(x) for x in out.splitlines()]
    assert [x["custom_id"] for x in results] == ["a", None, "b", "a", "c", "d", "e", None, "f"]
    ok = [x for x in results if x["response"] and x["response"]["status_code"] == 200]
    assert [x["custom_id"] for x in ok] == ["a", "b", "f"]
    assert all(x["response"]["body"]["choices"][0]["message"]["content"] for x in ok)
    assert results[0]["response"]["body"]["object"] == "chat.completion"
    errors = {i: x["error"]["message"] for i, x in enumerate(results) if x["error"]}
    assert errors[1].startswith("line 2: not JSON")
    assert errors[3] == "line 4: duplicate custom_id 'a'"
    assert "differs from the batch endpoint" in errors[6]
    assert "'custom_id'" in errors[7]
    assert results[4]["response"]["status_code"] == 404
    assert results[5]["response"]["status_code"] == 400
    assert "temperature" in json.dumps(results[5]["response"]["body"])
    assert len({x["id"] for x in results}) == 9

    # the flow: batch.requested → job → batch.completed (same correlation id)
    [completed] = [
        e
        for e in (await http.get("/v1/messages", params={"type": "batch.completed"})).json()["data"]
        if e["data"]["batch_id"] == created["id"]
    ]
    assert completed["data"]["total"] == 9 and completed["data"]["failed"] == 6


async def test_batch_input_errors_and_unknown_batches(
    env: tuple[Herald, httpx.AsyncClient],
) -> None:
    h, http = env
    ref = h.artifacts.put_bytes("inputs/empty.jsonl", b"\n\n")
    r = await http.post("/v1/batches", json={"input_file_id": ref.uri})
    done = await wait_done(http, r.json()["id"])
    assert done["status"] == "failed" and "no requests" in done["errors"]
    r = await http.post("/v1/batches", json={"input_file_id": "inputs/nothing-here.jsonl"})
    done = await wait_done(http, r.json()["id"])
    assert done["status"] == "failed" and "nothing-here" in done["errors"]
    r = await http.get("/v1/batches/batch_unknown")
    assert r.status_code == 404 and "batch_unknown" in r.json()["error"]["message"]
    r = await http.post("/v1/batches", json={"input_file_id": "x", "endpoint": "/v1/nope"})
    assert r.status_code in (400, 422)


def test_parse_batch_whole_file_errors() -> None:
    with pytest.raises(BatchInputError, match="UTF-8"):
        parse_batch(b"\xff\xfe", EP)
    with pytest.raises(BatchInputError, match="no requests"):
        parse_batch(b"  \n", EP)
    [line] = parse_batch(chat("x").encode(), EP)
    assert line.custom_id == "x" and line.body is not None and line.error is None
