"""Issue 9 roles: `herald serve` is a model server only (data plane + deployments, no control
plane, no sensors); every role exits 2 with the URL and what to check when the database or the
artifact store cannot be reached at start."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.slow

MODELS = {"echo": {"backend": "fake", "model": "e", "options": {"reply": "served"}}}


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_mounts_the_data_plane_only(server_factory: Any) -> None:
    srv = server_factory(
        [],
        command="serve",
        HERALD_SERVING__MODELS=json.dumps(MODELS),
        HERALD_SERVING__BUNDLED="false",
        HERALD_API_KEY="serve-key-0123456789abcdef0123",
    )
    srv.start()
    client = openai.OpenAI(
        api_key="serve-key-0123456789abcdef0123", base_url=f"{srv.url}/v1", max_retries=0
    )
    assert [m.id for m in client.models.list().data] == ["echo"]
    r = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "x"}])
    assert r.choices[0].message.content == "served"
    with srv.client() as http:
        assert http.get("/v1/deployments").status_code == 200
        assert http.get("/v1/messages").status_code == 404  # no control plane here
        assert http.get("/v1/sensors").status_code == 404
        assert http.get("/v1/jobs").status_code == 404
        assert http.get("/v1/monitors").status_code == 404
        # clients rate what the data plane answered, on the data plane
        rated = http.post("/v1/feedback", json={"response_id": r.id, "thumbs": "up"})
        assert rated.status_code == 201, rated.text
        assert http.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert "herald:request_success_total" in http.get("/metrics").text


def run_role(role: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "herald.cli.main", role]
    if role != "worker":
        args += ["--port", str(closed_port())]
    return subprocess.run(
        args,
        cwd=ROOT,
        env={
            **os.environ,
            "HERALD_HOME": str(tmp_path / role),
            "HERALD_API_KEY": "k-roles-startup-0123456789abcdef",
            "HERALD_LOG_LEVEL": "WARNING",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("role", ["up", "api", "worker", "serve"])
def test_unreachable_database_is_a_clear_startup_error(role: str, tmp_path: Path) -> None:
    url = f"postgresql://herald:s3cret@127.0.0.1:{closed_port()}/herald"
    done = run_role(role, tmp_path, HERALD_DATABASE_URL=url)
    assert done.returncode == 2, done.stderr
    text = " ".join(done.stderr.split())
    assert f"cannot reach the database postgresql://herald:***@127.0.0.1:{url.split(':')[3]}" in (
        text
    )
    assert "check HERALD_DATABASE_URL" in text
    assert "s3cret" not in done.stderr + done.stdout  # the password is never printed
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("role", ["api", "worker"])
def test_unreachable_artifact_store_is_a_clear_startup_error(role: str, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    done = run_role(
        role,
        tmp_path,
        HERALD_ARTIFACTS_URL=f"s3://herald-artifacts?endpoint_url={endpoint}",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
    )
    assert done.returncode == 2, done.stderr
    text = " ".join(done.stderr.split())
    assert f"cannot reach the artifact store s3://herald-artifacts?endpoint_url={endpoint}" in text
    assert "check HERALD_ARTIFACTS_URL" in text and "Traceback" not in done.stderr
