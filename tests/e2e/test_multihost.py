"""Issue 9 on separate hosts: `herald api`, `herald worker` and `herald serve`, each with its OWN
HERALD_HOME (as in the Helm chart, where every pod has an emptyDir home), share only PostgreSQL
and the artifact store. What one role writes, the others must see:

* a deployment requested through the api and applied by the worker's sensors is served by the
  `herald serve` replica;
* a client key created on the api authenticates on the serve replica;
* requests served by the serve replica appear in the api's serving charts (the request log), and
  feedback given on the serve replica is in the monitoring state every role reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_roles_on_separate_homes_share_serving_and_monitoring_state(
    server_factory: Any, fresh_postgres_url: str, tmp_path: Path
) -> None:
    env = {
        "HERALD_DATABASE_URL": fresh_postgres_url,
        "HERALD_ARTIFACTS_URL": (tmp_path / "artifacts").as_uri(),
        "HERALD_API_KEY": "sk-multihost-" + uuid.uuid4().hex,
        "HERALD_SERVING__BUNDLED": "false",
        "HERALD_SENSORS__OWNERSHIP_RETRY_S": "0.5",
    }
    api = server_factory([], command="api", home=tmp_path / "api", **env)
    api.start(timeout=120)
    worker_home = tmp_path / "worker"
    worker_home.mkdir()
    with (worker_home / "worker.log").open("ab") as logf:
        worker = subprocess.Popen(
            [sys.executable, "-m", "herald.cli.main", "worker"],
            cwd=ROOT,
            env={**os.environ, "HERALD_HOME": str(worker_home), **env},
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
    serve = server_factory([], command="serve", home=tmp_path / "serve", **env)
    try:
        serve.start(timeout=120)
        log = worker_home / "worker.log"
        until(lambda: "worker running on" in log.read_text() or worker.poll() is not None,
              "the worker to start", timeout=180)  # fmt: skip
        assert worker.poll() is None, log.read_text()[-3000:]
        with api.client() as c, serve.client() as s:
            r = c.post("/v1/messages", json={"type": "model.register", "data": {
                "name": "m", "artifact_uri": (tmp_path / "m" / "1").as_uri(), "kind": "full"}})  # fmt: skip
            assert r.status_code == 202, r.text
            registered = lambda: c.get("/v1/registry/models/m").status_code == 200  # noqa: E731
            until(registered, "the registration (the worker's sensors)", timeout=180)
            r = c.post("/v1/deployments", json={
                "name": "chat", "targets": [{"model": "models:/m/1", "weight": 100,
                                             "backend": "fake"}]})  # fmt: skip
            assert r.status_code == 202, r.text

            # the worker applied it; the serve replica (another home) serves it
            def served() -> bool:
                d = s.get("/v1/deployments/chat")
                return d.status_code == 200 and bool(d.json()["live"])

            until(served, "the deployment on the serve replica", timeout=90)
            body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
            r = s.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            response_id = r.json()["id"]

            # a client key made on the api works on the serve replica
            r = c.post("/v1/keys", json={"name": "app", "scopes": ["inference"]})
            assert r.status_code == 201, r.text
            key = r.json()["key"]
            r = httpx.post(f"{serve.url}/v1/chat/completions", json=body, timeout=30,
                           headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            assert r.status_code == 200, r.text

            # feedback on the serve replica, read back by the api (another home)
            r = s.post("/v1/feedback", json={"response_id": response_id, "thumbs": "up"})
            assert r.status_code == 201, r.text

            # the api's charts count the serve replica's requests (the shared request log)
            def charted() -> int:
                data = c.get("/v1/dashboard/serving", params={"minutes": 30}).json()
                return int(data["models"].get("chat", {}).get("requests", 0))

            assert until(charted, "the serve replica's requests in the api's charts") >= 2
    finally:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
    # a process with yet another home reads the feedback from the shared monitoring state
    from herald.services import Services
    from herald.settings import Settings

    other = Services(Settings(home=tmp_path / "elsewhere", database_url=fresh_postgres_url))
    scores = other.monitoring.scores_by_response()
    other.close()
    assert scores.get(response_id) == 1.0, scores
