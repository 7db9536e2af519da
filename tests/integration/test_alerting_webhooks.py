"""Webhook alerting against a real HTTP receiver: signed deliveries, retries on 5xx, no retry
on 4xx, secrets kept out of the log, bad configuration refused at start."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from herald import Herald
from herald.alerting.webhooks import DELIVER_JOB, sign, verify
from herald.bus import EventQuery
from herald.errors import ConfigurationError
from herald.jobs.registry import default_jobs
from herald.monitoring.messages import DriftDetected

from .conftest import Env

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="  # base64("secret-key-for-tests")


class Receiver:
    """A real HTTP server; ``plan`` is the list of status codes it answers with, in order."""

    def __init__(self, plan: list[int]) -> None:
        self.plan = list(plan)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers.items()), body))
                    status = receiver.plan.pop(0) if receiver.plan else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(plan: list[int]) -> Receiver:
        r = Receiver(plan)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def drift() -> DriftDetected:
    return DriftDetected(
        rule="prompt-drift",
        metric="prompt_embedding_drift",
        model="m",
        value=0.001,
        comparison="<",
        threshold=0.01,
        window_s=3600,
        evidence={"n_live": 40},
    )


async def start(env: Env, url: str, monkeypatch: pytest.MonkeyPatch, **wh: Any) -> Herald:
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    monkeypatch.setenv("HERALD_SECURITY__EGRESS__ALLOW_PRIVATE", "true")  # loopback receivers
    env.jobs.add(default_jobs.get(DELIVER_JOB))
    hook = {"name": "ops", "url": url, "secret_env": "TEST_HOOK_SECRET", **wh}
    return await env.start(alerting={"webhooks": [hook]})


def test_sign_and_verify_round_trip() -> None:
    body = b'{"a":1}'
    sig = sign(SECRET, "msg_1", 1_700_000_000, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": sig}
    assert verify(SECRET, headers, body, now=1_700_000_010)
    assert not verify(SECRET, headers, b'{"a":2}', now=1_700_000_010)  # tampered body
    assert not verify("whsec_b3RoZXI=", headers, body, now=1_700_000_010)  # other secret
    assert not verify(SECRET, headers, body, now=1_700_000_000 + 3600)  # replayed later
    assert not verify(SECRET, {**headers, "webhook-id": "msg_2"}, body, now=1_700_000_010)
    # a raw (non-whsec) secret is used as UTF-8 bytes
    assert verify("plain", {**headers, "webhook-signature": sign("plain", "msg_1",
                  1_700_000_000, body)}, body, now=1_700_000_000)  # fmt: skip


async def test_alert_is_delivered_signed_after_a_retry(
    sqlite_env: Env, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rx = receiver_factory([503, 200])
    h = await start(sqlite_env, rx.url, monkeypatch)
    sent = await h.emit(drift())
    done = await sqlite_env.wait_for("job.succeeded", timeout=30)
    assert done, "the delivery job did not succeed"
    assert len(rx.requests) == 2  # 503, then delivered
    (h1, b1), (h2, b2) = rx.requests
    assert h1["webhook-id"] == h2["webhook-id"] == sent.id  # receivers dedupe on it
    assert b1 == b2
    assert verify(SECRET, h2, b2)
    event = json.loads(b2)
    assert event["type"] == "drift.detected"
    assert event["data"]["rule"] == "prompt-drift"
    assert event["correlationid"] == sent.correlationid
    assert h2["content-type"] == "application/cloudevents+json"
    # the delivery is in the alert's flow, and the secret is nowhere in the log
    flow = await h.log.query(EventQuery(correlationid=sent.correlationid, limit=100))
    types = [e.type for e in flow]
    assert "job.failed" in types and "job.succeeded" in types
    everything = json.dumps([e.to_cloudevent() for e in flow])
    assert SECRET.removeprefix("whsec_") not in everything
    jobs = await h.log.jobs()
    assert all(SECRET.removeprefix("whsec_") not in json.dumps(j.params) for j in jobs)


async def test_4xx_is_not_retried_and_other_types_are_not_forwarded(
    sqlite_env: Env, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rx = receiver_factory([410, 200])
    h = await start(sqlite_env, rx.url, monkeypatch, types=["drift.detected"])
    await h.emit(drift())
    failed = await sqlite_env.wait_for(
        "job.failed", timeout=30, where=lambda e: not e.data.get("will_retry")
    )
    assert failed, "the refused delivery did not fail"
    assert "410" in failed[0].data["error"] and "not retried" in failed[0].data["error"]
    assert len(rx.requests) == 1
    from herald.monitoring.messages import FeedbackRecorded

    await h.emit(
        FeedbackRecorded(feedback_id="f1", response_id="r1", score=1.0)
    )  # not a forwarded type
    await sqlite_env.wait_for("job.succeeded", timeout=1.0)
    assert len(rx.requests) == 1


async def test_unknown_type_is_refused_at_start(
    sqlite_env: Env, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match=r"alerting.webhooks\[ops\].types.*drift.detectd"):
        await start(sqlite_env, "http://127.0.0.1:9/x", monkeypatch, types=["drift.detectd"])


def test_settings_refuse_bad_webhooks() -> None:
    from pydantic import ValidationError

    from herald.settings import Settings

    with pytest.raises(ValidationError, match="used twice"):
        Settings(alerting={"webhooks": [{"name": "a", "url": "https://x"}] * 2})
    with pytest.raises(ValidationError, match="url"):
        Settings(alerting={"webhooks": [{"name": "a", "url": "ftp://x"}]})
