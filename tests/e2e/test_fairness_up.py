"""Regression (issue 13): one `inference` key sending a 4 MB chunked chat prompt froze a real
`herald up` (/healthz silent for seconds). Now the body limit counts chunked bytes (413), an
oversized prompt under the body limit is refused before tokenization (400), and /healthz keeps
answering throughout."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

MODELS = {"fake": {"backend": "fake", "model": "fake-1", "options": {"reply": "fine"}}}


def chat_body(chars: int) -> bytes:
    return json.dumps(
        {"model": "fake", "messages": [{"role": "user", "content": "a" * chars}]}
    ).encode()


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def test_healthz_answers_while_an_inference_key_sends_oversized_prompts(
    server_factory: Callable[..., Any],
) -> None:
    srv = server_factory(
        [], HERALD_SERVING__MODELS=json.dumps(MODELS), HERALD_SERVING__BUNDLED="false"
    )
    srv.start()
    with srv.client() as admin:  # an operator creates the client key (as `herald keys create`)
        r = admin.post("/v1/keys", json={"name": "team-a", "scopes": ["inference"]})
        assert r.status_code == 201, r.text
        key = r.json()["key"]
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    results: dict[str, httpx.Response] = {}

    def attack() -> None:
        with httpx.Client(base_url=srv.url, headers=auth, timeout=120) as c:
            # 4 MB, Transfer-Encoding: chunked (no Content-Length to check up front)
            results["chunked"] = c.post("/v1/chat/completions", content=chunks(chat_body(4 << 20)))
        with httpx.Client(base_url=srv.url, headers=auth, timeout=120) as c:
            # ~1 MB with Content-Length: under the body limit, over max_prompt_chars
            results["plain"] = c.post("/v1/chat/completions", content=chat_body(1_000_000))

    attacker = threading.Thread(target=attack)
    attacker.start()
    statuses: list[int] = []
    with httpx.Client(base_url=srv.url, timeout=30) as probe:
        while attacker.is_alive() or len(statuses) < 5:
            statuses.append(probe.get("/healthz").status_code)
    attacker.join(120)

    assert statuses and set(statuses) == {200}
    chunked = results["chunked"]
    assert chunked.status_code == 413, chunked.text
    assert chunked.json()["error"]["code"] == "payload_too_large"
    plain = results["plain"]
    assert plain.status_code == 400, plain.text
    assert plain.json()["error"]["code"] == "context_length_exceeded"

    with httpx.Client(base_url=srv.url, headers=auth, timeout=30) as c:  # the key still works
        ok = c.post(
            "/v1/chat/completions",
            json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"][0]["message"]["content"] == "fine"
    with srv.client() as admin:  # and the operator sees both refusals
        metrics = admin.get("/metrics").text
    assert 'herald_limit_refusals_total{key="' in metrics
    assert 'reason="body_too_large"' in metrics and 'reason="prompt_too_long"' in metrics
