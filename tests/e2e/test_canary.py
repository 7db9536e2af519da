"""Issue 4's done-when against a real `herald up`: two registered versions of a tiny Llama
(real transformers backend), v1 deployed, v2 added as a 10 % canary by a
``deployment.traffic.changed`` message, requests through the official ``openai`` client split
roughly 90/10, then promoted to 100 % by a message; ``/metrics`` shows the weights and the
per-version request counts (equal to what the clients saw)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow

KEY = "e2e-canary-key-0123456789abcdef"
CHAT: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
N = 300


def wait_event(
    http: httpx.Client, type_: str, timeout: float = 120, **match: Any
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = http.get("/v1/messages", params={"type": type_, "limit": 1000}).json()["data"]
        for e in events:
            if all(e["data"].get(k) == v for k, v in match.items()):
                return dict(e)
        failed = http.get("/v1/messages", params={"type": "deployment.failed"}).json()["data"]
        assert not failed, failed
        time.sleep(0.1)
    raise AssertionError(f"no {type_} {match} within {timeout}s")


def emit(http: httpx.Client, type_: str, data: dict[str, Any]) -> None:
    r = http.post("/v1/messages", json={"type": type_, "data": data})
    assert r.status_code == 202, r.text


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    assert m is not None, f"{name}{{{want}}} not in /metrics"
    return float(m.group(1))


def answer(client: openai.OpenAI, model: str) -> str:
    """Which weights answered: the greedy token and its log-probability (random tiny models
    may agree on the token, never on the exact probability)."""
    r = client.chat.completions.create(
        model=model, messages=CHAT, max_tokens=1, temperature=0, logprobs=True
    )
    [tok] = r.choices[0].logprobs.content  # type: ignore[union-attr]
    return f"{tok.token!r} {tok.logprob:.5f}"


def test_canary_at_10_percent_promoted_to_100_by_messages(
    server_factory: Any, tmp_path: Path
) -> None:
    from herald.models.testing import TINY_CHAT_TEMPLATE, tiny_llama

    v1 = tiny_llama(tmp_path / "tiny-v1", seed=0)
    v2 = tiny_llama(tmp_path / "tiny-v2", seed=1)  # "fine-tuned": other weights, other answers
    srv = server_factory([], HERALD_SERVING__BUNDLED="false", HERALD_API_KEY=KEY)
    srv.start(timeout=60)
    client = openai.OpenAI(api_key=KEY, base_url=f"{srv.url}/v1", max_retries=0)
    with srv.client() as http:
        for path, aliases in ((v1, ["champion"]), (v2, [])):
            emit(
                http,
                "model.register",
                {
                    "name": "tiny",
                    "artifact_uri": path.as_uri(),
                    "kind": "full",
                    "chat_template": TINY_CHAT_TEMPLATE,
                    "aliases": aliases,
                },
            )
        wait_event(http, "model.registered", version=2)
        # the answers each version gives (greedy decoding: deterministic)
        a1, a2 = answer(client, "models:/tiny/1"), answer(client, "models:/tiny/2")
        assert a1 != a2

        emit(
            http,
            "deployment.requested",
            {"name": "assistant", "targets": [{"model": "models:/tiny@champion"}]},
        )
        wait_event(http, "deployment.ready", name="assistant", revision=1)
        assert {m.id for m in client.models.list().data} >= {"assistant"}
        assert answer(client, "assistant") == a1

        emit(
            http,
            "deployment.traffic.changed",
            {
                "name": "assistant",
                "weights": {"models:/tiny@champion": 90},
                "add": [{"model": "models:/tiny/2", "weight": 10}],
                "reason": "canary of the fine-tuned version",
            },
        )
        ready = wait_event(http, "deployment.ready", name="assistant", revision=2)
        assert [t["version"] for t in ready["data"]["targets"]] == [
            "models:/tiny/1",
            "models:/tiny/2",
        ]
        got = [answer(client, "assistant") for _ in range(N)]
        assert set(got) == {a1, a2}
        canary = got.count(a2)
        assert 0.04 * N < canary < 0.18 * N  # 10 % ± 4 sd (binomial sd 1.7 % at N=300)
        # streaming goes through the same split
        stream = client.chat.completions.create(
            model="assistant", messages=CHAT, max_tokens=1, temperature=0, stream=True,
            logprobs=True,
        )  # fmt: skip
        [tok] = [t for c in stream if c.choices and c.choices[0].logprobs
                 for t in c.choices[0].logprobs.content or []]  # fmt: skip
        streamed = f"{tok.token!r} {tok.logprob:.5f}"
        assert streamed in (a1, a2)
        canary += streamed == a2

        text = http.get("/metrics").text
        labels1 = {"deployment": "assistant", "version": "models:/tiny/1"}
        labels2 = {"deployment": "assistant", "version": "models:/tiny/2"}
        assert metric(text, "herald_deployment_traffic_weight", **labels1) == 90.0
        assert metric(text, "herald_deployment_traffic_weight", **labels2) == 10.0
        v1_before = metric(text, "herald_deployment_requests_total", **labels1)
        assert metric(text, "herald_deployment_requests_total", **labels2) == canary
        assert v1_before == 1 + N + 1 - canary  # the revision-1 request, the split, the stream

        emit(
            http,
            "deployment.traffic.changed",
            {
                "name": "assistant",
                "weights": {"models:/tiny/2": 100, "models:/tiny@champion": 0},
                "reason": "promote the canary",
            },
        )
        wait_event(http, "deployment.ready", name="assistant", revision=3)
        assert {answer(client, "assistant") for _ in range(20)} == {a2}
        text = http.get("/metrics").text
        assert metric(text, "herald_deployment_traffic_weight", **labels1) == 0.0
        assert metric(text, "herald_deployment_traffic_weight", **labels2) == 100.0
        assert metric(text, "herald_deployment_requests_total", **labels2) == canary + 20
        assert metric(text, "herald_deployment_requests_total", **labels1) == v1_before
        assert metric(text, "herald_deployment_revision", deployment="assistant") == 3.0
