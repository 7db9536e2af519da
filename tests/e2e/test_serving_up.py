"""`herald up` serves the OpenAI data plane: the official client and `herald chat` against a
real server process (fake backend configured through HERALD_SERVING__MODELS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.slow

MODELS = {"echo": {"backend": "fake", "model": "e", "options": {"reply": "Hello from Herald"}}}
CHAT: list[Any] = [{"role": "user", "content": "hi"}]


def test_openai_client_and_chat_cli_against_herald_up(server_factory: Any, tmp_path: Path) -> None:
    srv = server_factory(
        [],
        HERALD_SERVING__MODELS=json.dumps(MODELS),
        HERALD_SERVING__BUNDLED="false",
        HERALD_API_KEY="e2e-key-0123456789abcdef01234",
    )
    srv.start()
    client = openai.OpenAI(
        api_key="e2e-key-0123456789abcdef01234", base_url=f"{srv.url}/v1", max_retries=0
    )
    assert [m.id for m in client.models.list().data] == ["echo"]
    r = client.chat.completions.create(model="echo", messages=CHAT)
    assert r.choices[0].message.content == "Hello from Herald"
    stream = client.chat.completions.create(
        model="echo", messages=CHAT, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from Herald"
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="missing", messages=CHAT)

    with srv.client() as http:
        metrics = http.get("/metrics").text
    assert 'herald:request_success_total{finished_reason="stop",model_name="echo"' in metrics
    assert 'herald:request_errors_total{model_name="missing",status="404"' in metrics

    env = {**os.environ, "HERALD_URL": srv.url, "HERALD_API_KEY": "e2e-key-0123456789abcdef01234"}
    out = subprocess.run(
        [sys.executable, "-m", "herald.cli.main", "chat", "echo"],
        input="first question\n/exit\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Hello from Herald" in out.stdout
