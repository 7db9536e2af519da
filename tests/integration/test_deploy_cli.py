"""`herald deploy` and `herald keys` against a real `herald up` (fake backend over registry
versions): create with a canary, list/show, traffic, rollback, delete; keys create/list/revoke."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from herald.cli.deploy import parse_weights
from herald.cli.main import app
from tests.e2e.conftest import Server

pytestmark = pytest.mark.slow


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def wait_json(*args: str, until: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = CliRunner().invoke(app, [*args, "--json"])
        data = json.loads(result.output) if result.exit_code == 0 else None
        if (data is not None and until(data)) or time.monotonic() > deadline:
            assert data is not None, result.output
            assert until(data), data
            return data
        time.sleep(0.1)


def test_parse_weights() -> None:
    assert parse_weights("models:/x/1=90, models:/x/2=10") == {
        "models:/x/1": 90.0,
        "models:/x/2": 10.0,
    }
    for bad in ("models:/x/1", "models:/x/1=abc", "models:/x/1=101", "a=1,a=2", ","):
        with pytest.raises(typer.BadParameter):
            parse_weights(bad)


def test_cli_deploy_and_keys_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server(tmp_path / "home", [], {"HERALD_SERVING__BUNDLED": "false"})
    server.start(timeout=60)
    try:
        monkeypatch.setenv("HERALD_URL", server.url)
        monkeypatch.setenv("HERALD_API_KEY", server.key)
        monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
        for v in (1, 2):
            data = json.dumps(
                {"name": "m", "artifact_uri": (tmp_path / "m" / str(v)).as_uri(), "kind": "full"}
            )
            run("emit", "model.register", "--data", data)
        wait_json("models", "show", "m", until=lambda d: d["latest_version"] == 2)
        run("models", "promote", "m", "1", "--alias", "champion")
        wait_json("models", "show", "m@champion", until=lambda d: d.get("version") == 1)

        assert "no deployments yet" in run("deploy", "list")
        out = run(
            "deploy", "create", "chat", "--target", "models:/m@champion",
            "--canary", "models:/m/2", "--weight", "10", "--backend", "fake", "--wait", "30",
            "--min-score", "exact_match=0.5",
        )  # fmt: skip
        assert "revision 1 ready" in out
        dep = wait_json("deploy", "show", "chat", until=lambda d: d["status"] == "ready")
        assert [(t["version"], t["weight"]) for t in dep["targets"]] == [
            ("models:/m/1", 90.0),
            ("models:/m/2", 10.0),
        ]
        assert [g["version"] for g in dep["live"]] == ["models:/m/1", "models:/m/2"]
        assert dep["canary"]["enabled"] and dep["canary"]["min_scores"] == {"exact_match": 0.5}
        listed = run("deploy", "list")
        assert "chat" in listed and "models:/m/2 10%" in listed
        shown = run("deploy", "show", "chat")
        assert "models:/m/1" in shown and "canary rollback: on (vs stable)" in shown
        # the deployment answers on the data plane
        with server.client() as http:
            r = http.post(
                "/v1/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
            )
        assert r.status_code == 200, r.text

        out = run("deploy", "traffic", "chat", "--weights", "models:/m/2=100,models:/m/1=0",
                  "--wait", "30")  # fmt: skip
        assert "revision 2 ready" in out
        dep = wait_json("deploy", "show", "chat", until=lambda d: d["revision"] == 2)
        assert [t["weight"] for t in dep["targets"]] == [0.0, 100.0]
        assert "revision 3 ready" in run("deploy", "rollback", "chat", "--wait", "30")
        dep = wait_json("deploy", "show", "chat", until=lambda d: d["revision"] == 3)
        assert [t["weight"] for t in dep["targets"]] == [90.0, 10.0]

        # clear errors: unknown target in a traffic change, unknown deployment, bad option
        assert "unknown target" in run(
            "deploy", "traffic", "chat", "--weights", "models:/m/9=5", "--wait", "10", code=1
        )
        assert "chat2" in run("deploy", "show", "chat2", code=1)
        assert "--canary" in run(
            "deploy", "create", "x", "--target", "models:/m/1", "--weight", "20", code=1
        )
        # a canary added to a running deployment by a traffic change
        run("deploy", "create", "solo", "-t", "models:/m@champion", "--backend", "fake",
            "--wait", "30")  # fmt: skip
        out = run("deploy", "traffic", "solo", "--add", "models:/m/2=10",
                  "--weights", "models:/m@champion=90", "--wait", "30")  # fmt: skip
        assert "revision 2 ready" in out
        dep = wait_json("deploy", "show", "solo", until=lambda d: len(d["live"]) == 2)
        assert [(t["version"], t["weight"], t["backend"]) for t in dep["targets"]] == [
            ("models:/m/1", 90.0, "fake"),
            ("models:/m/2", 10.0, "fake"),
        ]
        assert "listed twice" in run("deploy", "traffic", "solo", "--add", "models:/m/2=5", code=1)
        assert "give --weights" in run("deploy", "traffic", "solo", code=1)
        for name in ("chat", "solo"):
            assert "deleted" in run("deploy", "delete", name, "--wait", "30")
        assert wait_json("deploy", "list", until=lambda d: d == []) == []

        # client keys: printed once, listed without the secret, revoked
        out = run("keys", "create", "team-a", "--scope", "inference", "--rate", "120")
        secret = out.strip().splitlines()[-1]
        assert secret.startswith("hk_c_")
        [key] = json.loads(run("keys", "list", "--json"))
        assert key["name"] == "team-a" and key["scopes"] == ["inference"]
        assert key["rate_per_minute"] == 120 and "key" not in key
        assert secret not in run("keys", "list")
        with httpx.Client(base_url=server.url, timeout=10) as http:
            auth = {"Authorization": f"Bearer {secret}"}
            assert http.get("/v1/models", headers=auth).status_code == 200
            assert http.get("/v1/deployments", headers=auth).status_code == 403
        assert "revoked" in run("keys", "revoke", key["id"])
        assert json.loads(run("keys", "list", "--json"))[0]["revoked_at"]
        assert "unknown scope" in run("keys", "create", "b", "--scope", "root", code=1)
        assert "no API key" in run("keys", "revoke", "nope", code=1)
    finally:
        server.stop()
