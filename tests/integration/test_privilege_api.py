"""Privilege over HTTP (issue 13, scope 8): model code and pickle weights only by operator
settings, never by a message, job or request field; no server paths for non-admin callers."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.api import create_app
from herald.bootstrap import Herald
from herald.settings import Settings

KEY = "privilege-admin-key-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {KEY}"}
CHAT = [{"role": "user", "content": "hi"}]


class Boom:
    """Unpickling this creates ``marker``: proof that a pickle was (never) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (str(self.marker), "w")


@pytest.fixture
def pickled_model(tmp_path: Path) -> Path:
    """A model folder whose only weights are a hostile pickle (``pytorch_model.bin``)."""
    folder = tmp_path / "models" / "pickled"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama", "architectures": ["X"]}')
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Boom(tmp_path / "PWNED")))
    return folder


@pytest.fixture
async def api(tmp_path: Path, pickled_model: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        serving={
            "models": {
                "pickled": {"backend": "transformers", "model": str(pickled_model)},
                "local": {"backend": "fake", "model": str(tmp_path / "models" / "local")},
            },
            "bundled": True,  # the bundled GGUF lives at a site-packages path
            "registry": False,
        },
    )
    h = Herald(settings)
    await h.start(sensors=False, workers=False)
    app = create_app(h, KEY, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as c:
            yield c
    finally:
        await h.stop()


async def client_key(c: httpx.AsyncClient, scopes: list[str]) -> dict[str, str]:
    r = await c.post("/v1/keys", json={"name": "team", "scopes": scopes}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}


FINETUNE = {"base_model": "tiny", "dataset": "datasets:/d/1"}


@pytest.mark.parametrize(
    ("type_", "data", "where"),
    [
        ("finetune.requested", {**FINETUNE, "trust_remote_code": True}, "trust_remote_code"),
        ("finetune.requested", {**FINETUNE, "trust_remote_code": False}, "trust_remote_code"),
        (
            "deployment.requested",
            {
                "name": "d",
                "targets": [{"model": "models:/m/1", "options": {"trust_remote_code": True}}],
            },
            "targets.0.options.trust_remote_code",
        ),
        (
            "deployment.requested",
            {
                "name": "d",
                "targets": [{"model": "models:/m/1", "options": {"engine": {"load_format": "pt"}}}],
            },
            "targets.0.options.engine.load_format",
        ),
    ],
)
async def test_messages_cannot_switch_on_model_code_or_pickle(
    api: httpx.AsyncClient, type_: str, data: dict[str, Any], where: str
) -> None:
    r = await api.post("/v1/messages", json={"type": type_, "data": data}, headers=ADMIN)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "operator_setting_required" and repr(where) in err["message"]
    assert "HERALD_SECURITY__" in err["message"]
    stored = await api.get("/v1/messages", params={"type": type_}, headers=ADMIN)
    assert stored.json()["data"] == []  # nothing stored


async def test_request_bodies_cannot_switch_it_on_either(api: httpx.AsyncClient) -> None:
    job = await api.post(
        "/v1/jobs",
        json={"name": "finetune", "params": {**FINETUNE, "trust_remote_code": True}},
        headers=ADMIN,
    )
    assert job.status_code == 422 and job.json()["error"]["code"] == "operator_setting_required"
    body = {"name": "d", "targets": [{"model": "models:/m/1", "options": {"trust_remote_code": 1}}]}
    dep = await api.post("/v1/deployments", json=body, headers=ADMIN)
    assert dep.status_code == 422, dep.text
    assert "security.trust_remote_code" in dep.json()["error"]["message"]


async def test_pickle_weights_are_refused_and_paths_hidden_from_client_keys(
    api: httpx.AsyncClient, pickled_model: Path, tmp_path: Path
) -> None:
    inference = await client_key(api, ["inference"])
    body = {"model": "pickled", "messages": CHAT, "max_tokens": 2}
    r = await api.post("/v1/chat/completions", json=body, headers=inference)
    assert r.status_code >= 400, r.text
    message = r.json()["error"]["message"]
    assert "safetensors" in message and "allow_unsafe_weights" in message
    assert str(tmp_path) not in r.text and "<path>" in message  # no server path for a client
    assert not (tmp_path / "PWNED").exists()  # the pickle was never loaded

    admin = await api.post("/v1/chat/completions", json=body, headers=ADMIN)
    assert str(pickled_model) in admin.json()["error"]["message"]  # the operator sees where


async def test_models_list_shows_client_keys_no_server_paths(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    inference = await client_key(api, ["inference"])
    r = await api.get("/v1/models", headers=inference)
    assert r.status_code == 200
    cards = r.json()["data"]
    assert {"pickled", "local"} <= {c["id"] for c in cards}
    for card in cards:
        for field in ("root", "parent"):
            assert not str(card.get(field) or "").startswith("/"), card
    assert str(tmp_path) not in r.text and "site-packages" not in r.text
    one = await api.get("/v1/models/local", headers=inference)
    assert one.json()["root"] == "local"

    admin = (await api.get("/v1/models", headers=ADMIN)).json()["data"]
    assert any(str(tmp_path) in str(c["root"]) for c in admin)  # the operator still sees paths
