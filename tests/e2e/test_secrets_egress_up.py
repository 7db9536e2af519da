"""Regression (issue 13): a caller cannot make `herald up` send its admin key to a URL of the
caller's choosing, through the evaluation API, messages or deployments."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

ADMIN = "e2e-admin-key-that-must-never-leave-the-server"


@pytest.fixture
def listener() -> Any:
    """A TCP listener standing in for the attacker's server: it records what reaches it."""
    got: list[bytes] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    got.append(conn.recv(65536))

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield sock.getsockname()[1], got
    stop.set()
    t.join(2)
    sock.close()


@pytest.mark.slow
def test_api_key_env_attack_fails_safely(
    server_factory: Any, listener: tuple[int, list[bytes]], tmp_path: Path
) -> None:
    port, got = listener
    # the operator opened loopback (a single-user machine): only the secrets rule stops the leak
    server = server_factory([], HERALD_API_KEY=ADMIN, HERALD_SECURITY__EGRESS__ALLOW_PRIVATE="true")
    server.start()
    target = f"http://127.0.0.1:{port}/v1"
    with server.client() as api:
        r = api.post(
            "/v1/evaluations",
            json={"target": f"{target}#m", "suite": "tiny", "api_key_env": "HERALD_API_KEY"},
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "env_reference_refused"
        r = api.post(
            "/v1/messages",
            json={
                "type": "evaluation.requested",
                "data": {"target": f"{target}#m", "suite": "tiny", "api_key_env": "HERALD_API_KEY"},
            },
        )
        assert r.status_code == 422, r.text
        dep = {
            "name": "leak",
            "targets": [
                {
                    "model": "models:/m/1",
                    "backend": "openai",
                    "options": {"base_url": target, "api_key_env": "HERALD_API_KEY"},
                }
            ],
        }
        r = api.post("/v1/deployments", json=dep)
        assert r.status_code == 422, r.text
        assert "api_key_secret" in r.json()["error"]["message"]
        events = api.get("/v1/messages", params={"limit": 100}).json()["data"]
        assert not [
            e for e in events if e["type"] in ("evaluation.requested", "deployment.requested")
        ]
    assert not any(ADMIN.encode() in chunk for chunk in got)


@pytest.mark.slow
def test_private_targets_are_refused_by_default(
    server_factory: Any, listener: tuple[int, list[bytes]]
) -> None:
    port, got = listener
    server = server_factory([], HERALD_API_KEY=ADMIN)
    server.start()
    with server.client() as api:
        for url in (f"http://127.0.0.1:{port}/v1#m", "http://169.254.169.254/latest#m"):
            r = api.post("/v1/evaluations", json={"target": url, "suite": "tiny"})
            assert r.status_code == 403, r.text
            assert r.json()["error"]["code"] == "egress_denied"
    assert got == []
