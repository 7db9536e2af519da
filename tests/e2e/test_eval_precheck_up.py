"""``herald eval run … --no-wait`` and ``POST /v1/messages`` refuse an evaluation that cannot
run at once, naming the field, against a real ``herald up`` (issue 14: the message was stored
and its job failed seconds later)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_finetune_eval_up import herald_cli

pytestmark = pytest.mark.slow


def test_an_unknown_suite_is_refused_at_once(server_factory: Any) -> None:
    server = server_factory([])
    server.start()
    proc = herald_cli(
        server, "eval", "run", "--target", "some-model", "--suite", "no-such-suite", "--no-wait"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "suite: suite 'no-such-suite' not found" in proc.stderr
    assert "(HTTP 422)" in proc.stderr
    with server.client() as c:
        body = {"type": "evaluation.requested", "data": {"target": "m", "suite": "no-such-suite"}}
        r = c.post("/v1/messages", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["message"].startswith("suite: suite 'no-such-suite' not found")
        body["data"] = {"target": "models:/ghost@champion", "suite": "tiny"}
        r = c.post("/v1/messages", json=body)
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("target: ")
        stored = c.get("/v1/messages", params={"type": "evaluation.requested"}).json()["data"]
        assert stored == []
        assert c.get("/v1/jobs").json()["data"] == []
        # a request that can run is still accepted
        proc = herald_cli(server, "eval", "run", "--target", "m", "--suite", "tiny", "--no-wait")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        stored = c.get("/v1/messages", params={"type": "evaluation.requested"}).json()["data"]
        assert len(stored) == 1
