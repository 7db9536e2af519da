"""Registry REST routes over ASGI on a running Herald (SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from herald.api import create_app
from herald.registry import sensors as registry_sensors

from .conftest import Env

KEY = "test-key"


@pytest.fixture
async def api_env(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Env]]:
    env = Env(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    registry_sensors.install(env.sensors)
    h = await env.start()
    reg = h.registry
    reg.register_model_version("demo", artifact_uri="file:///m/1", kind="lora", metrics={"l": 1.0})
    reg.register_model_version(
        "demo",
        artifact_uri="file:///m/2",
        kind="lora",
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        dataset="datasets:/chat/1",
        run_id="r1",
    )
    reg.add_dataset_version(
        "chat",
        fingerprint="f1",
        artifact_uri="file:///d/1",
        format="chat",
        rows=4,
        splits={"train": 4},
        stats={},
        pii={},
        source="chat.jsonl",
    )
    reg.create_run("r1", name="sft", params={"lr": 0.1})
    reg.create_run("r2", name="sft", params={"lr": 0.2})
    reg.log_metrics("r1", 1, {"loss": 2.0})
    reg.log_metrics("r1", 2, {"loss": 1.0, "acc": 0.5})
    reg.log_metrics("r2", 1, {"loss": 3.0})
    app = create_app(h, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield c, env
    await h.stop()
    env.herald = None


async def test_models_versions_resolve_card(api_env: tuple[httpx.AsyncClient, Env]) -> None:
    api, _ = api_env
    models = (await api.get("/v1/registry/models")).json()["data"]
    [m] = [m for m in models if m["name"] == "demo"]  # beside the bundled base models
    assert (m["name"], m["latest_version"], m["versions"]) == ("demo", 2, 2)
    model = (await api.get("/v1/registry/models/demo")).json()
    assert [v["version"] for v in model["versions"]] == [2, 1]
    assert "versions_next_cursor" not in model  # all versions: nothing to continue
    # the head with one version, then the rest by the cursor it gives
    head = (await api.get("/v1/registry/models/demo", params={"versions_limit": 1})).json()
    assert [v["version"] for v in head["versions"]] == [2] and head["latest_version"] == 2
    rest = await api.get(
        "/v1/registry/models/demo/versions", params={"cursor": head["versions_next_cursor"]}
    )
    assert [v["version"] for v in rest.json()["data"]] == [1]
    bare = (await api.get("/v1/registry/models/demo", params={"versions_limit": 0})).json()
    assert bare["versions"] == [] and bare["versions_next_cursor"] is None
    assert bare["latest_version"] == 2 and bare["aliases"] == model["aliases"]
    r = await api.get("/v1/registry/models/demo", params={"versions_limit": -1})
    assert r.status_code == 422
    v1 = (await api.get("/v1/registry/models/demo/versions/1")).json()
    assert v1["uri"] == "models:/demo/1" and v1["metrics"] == {"l": 1.0}
    r = await api.get("/v1/registry/resolve", params={"uri": "models:/demo"})
    assert r.json()["version"] == 2
    card = await api.get("/v1/registry/models/demo/versions/2/card")
    assert card.headers["content-type"].startswith("text/markdown")
    front = yaml.safe_load(card.text.split("---\n")[1])
    assert front["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


async def test_errors_are_openai_style(api_env: tuple[httpx.AsyncClient, Env]) -> None:
    api, _ = api_env
    r = await api.get("/v1/registry/resolve", params={"uri": "models:/demo@champion"})
    assert r.status_code == 404
    assert "no alias 'champion'" in r.json()["error"]["message"]
    r = await api.get("/v1/registry/models/ghost")
    assert r.status_code == 404 and "registered models: demo" in r.json()["error"]["message"]
    r = await api.get("/v1/registry/models/%2e%2e")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = await api.get("/v1/registry/resolve", params={"uri": "hf:/x"})
    assert r.status_code == 422
    r = await api.post("/v1/registry/models/demo/versions/9/promote", json={"alias": "champion"})
    assert r.status_code == 404
    r = await api.post("/v1/registry/models/demo/versions/1/promote", json={"alias": "1bad"})
    assert r.status_code == 422


async def test_promote_and_archive_go_through_messages(
    api_env: tuple[httpx.AsyncClient, Env],
) -> None:
    api, env = api_env
    r = await api.post(
        "/v1/registry/models/demo/versions/1/promote", json={"alias": "champion", "reason": "ok"}
    )
    assert r.status_code == 202
    request = r.json()
    assert request["type"] == "model.promote" and request["subject"] == "models/demo"
    [promoted] = await env.wait_for("model.promoted")
    assert promoted.causationid == request["id"]
    resolved = await api.get("/v1/registry/resolve", params={"uri": "models:/demo@champion"})
    assert resolved.json()["version"] == 1
    history = (await api.get("/v1/registry/models/demo/aliases/history")).json()["data"]
    assert [(h["alias"], h["version"], h["reason"]) for h in history] == [("champion", 1, "ok")]
    r = await api.post("/v1/registry/models/demo/versions/1/archive", json={"reason": "old"})
    assert r.status_code == 202
    [archived] = await env.wait_for("model.archived")
    assert archived.data["removed_aliases"] == ["champion"]
    r = await api.post("/v1/registry/models/demo/versions/1/promote", json={})
    assert r.status_code == 409


async def test_datasets_and_runs(api_env: tuple[httpx.AsyncClient, Env]) -> None:
    api, _ = api_env
    [d] = (await api.get("/v1/datasets")).json()["data"]
    assert d["uri"] == "datasets:/chat/1"
    got = (await api.get("/v1/datasets/chat")).json()
    assert got["latest"]["version"] == 1 and len(got["versions"]) == 1
    assert (await api.get("/v1/datasets/chat/versions/1")).json()["rows"] == 4
    assert (await api.get("/v1/datasets/chat/versions/5")).status_code == 404
    runs = (await api.get("/v1/runs", params={"name": "sft"})).json()["data"]
    assert {r["id"] for r in runs} == {"r1", "r2"}
    r1 = (await api.get("/v1/runs/r1")).json()
    assert r1["metrics"] == {"acc": 0.5, "loss": 1.0} and r1["models"] == ["models:/demo/2"]
    series = (await api.get("/v1/runs/r1/metrics", params={"keys": "loss"})).json()["metrics"]
    assert [p["value"] for p in series["loss"]] == [2.0, 1.0]
    cmp = (await api.get("/v1/runs/compare", params={"ids": "r1,r2"})).json()
    assert cmp["params"]["differ"] == {"lr": {"r1": 0.1, "r2": 0.2}}
    assert cmp["metrics"]["loss"]["r2"]["last"] == 3.0
    assert (await api.get("/v1/runs/nope")).status_code == 404


async def _walk(api: httpx.AsyncClient, path: str, key: str, **params: object) -> list[list[Any]]:
    pages: list[list[Any]] = []
    cursor = None
    while True:
        r = await api.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append([x[key] for x in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50


async def test_models_versions_runs_and_evaluations_page_by_cursor(
    api_env: tuple[httpx.AsyncClient, Env],
) -> None:
    api, env = api_env
    assert env.herald is not None
    reg = env.herald.registry
    for name in ("zz-a", "zz-b", "zz-c"):
        reg.register_model_version(name, artifact_uri="file:///m", kind="lora")
    names = [m["name"] for m in (await api.get("/v1/registry/models")).json()["data"]]
    pages = await _walk(api, "/v1/registry/models", "name", limit=2)
    assert [n for p in pages for n in p] == names and all(len(p) <= 2 for p in pages)

    for _ in range(3):
        reg.register_model_version("demo", artifact_uri="file:///m/n", kind="lora")
    assert await _walk(api, "/v1/registry/models/demo/versions", "version", limit=2) == [
        [5, 4],
        [3, 2],
        [1],
    ]
    r = await api.get("/v1/registry/models/nope/versions")
    assert r.status_code == 404

    for i in range(3):
        reg.create_run(f"r-page-{i}", name="paged")
    runs = await _walk(api, "/v1/runs", "id", limit=2, name="paged")
    assert [len(p) for p in runs] == [2, 1]
    assert sorted(i for p in runs for i in p) == ["r-page-0", "r-page-1", "r-page-2"]

    store = env.herald.services.evaluations
    for i in range(3):
        store.begin(f"ev-page-{i}", suite="s", target="t")
    evals = await _walk(api, "/v1/evaluations", "id", limit=2)
    everything = (await api.get("/v1/evaluations")).json()
    assert everything["next_cursor"] is None
    assert [i for p in evals for i in p] == [e["id"] for e in everything["data"]]

    # a cursor is tied to its listing: models ≠ runs ≠ evaluations ≠ another model's versions
    models_cursor = (await api.get("/v1/registry/models", params={"limit": 1})).json()
    runs_cursor = (await api.get("/v1/runs", params={"limit": 1})).json()["next_cursor"]
    versions = await api.get("/v1/registry/models/demo/versions", params={"limit": 1})
    for path, cursor in (
        ("/v1/runs", models_cursor["next_cursor"]),
        ("/v1/evaluations", runs_cursor),
        ("/v1/registry/models", runs_cursor),
        ("/v1/registry/models/zz-a/versions", versions.json()["next_cursor"]),
        ("/v1/registry/models", "garbage"),
    ):
        r = await api.get(path, params={"cursor": cursor})
        assert r.status_code == 422, (path, r.text)
        assert "'cursor'" in r.json()["error"]["message"]
