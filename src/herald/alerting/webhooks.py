"""Webhook alerting: alert messages forwarded to HTTP receivers, signed, with retries.

Each configured webhook (``alerting.webhooks`` in ``herald.yaml``) becomes a sensor
``alerting.webhook.<name>`` on its message types. For each message the sensor requests one
``herald.alerting.deliver`` job (inline executor), so a delivery is durable (it survives a
restart), retried with the job backoff on timeouts, connection errors, 408, 429 and 5xx, not
retried on other 4xx answers, and visible in ``herald jobs`` and the dashboard. A delivery that
gives up ends as ``job.failed`` in the same flow as the alert.

The request follows the Standard Webhooks convention (https://www.standardwebhooks.com):

* body: the message as a CloudEvent (``application/cloudevents+json``);
* ``webhook-id``: the message id (receivers dedupe on it: delivery is at-least-once);
* ``webhook-timestamp``: Unix seconds of this attempt;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`` when the
  webhook names ``secret_env`` — the secret itself never enters the event log or job params.

Receivers check signatures with :func:`verify`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import time
from typing import Any

import httpx

from herald.errors import BackendUnavailable, ConfigurationError, HeraldError, NotFound
from herald.jobs.context import JobContext
from herald.jobs.registry import job
from herald.messages.catalog import Catalog
from herald.security.egress import EgressPolicy, EgressTransport
from herald.sensors.base import SensorContext, SensorRegistry, sensor
from herald.services import Services
from herald.settings import AlertingSettings, WebhookSettings

log = logging.getLogger("herald.alerting")

DELIVER_JOB = "herald.alerting.deliver"
SENSOR_PREFIX = "alerting.webhook."
RETRY_STATUSES = frozenset({408, 425, 429})
TOLERANCE_S = 300  # signatures older or newer than this are refused by verify()


class DeliveryRefused(HeraldError):
    """The receiver answered with a 4xx that a retry will not fix."""

    status = 400
    code = "webhook_refused"


# signing --------------------------------------------------------------------------------------
def secret_bytes(secret: str) -> bytes:
    """The HMAC key: ``whsec_<base64>`` is decoded (Standard Webhooks); anything else is used
    as UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            raise ConfigurationError(
                "webhook secret starts with 'whsec_' but the rest is not base64"
            ) from None
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None) -> bool:
    """True when ``headers`` carry a valid, fresh signature of ``body`` (for receivers)."""
    h = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not msg_id or not ts or not sigs:
        return False
    try:
        timestamp = int(ts)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE_S:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in sigs.split())


# delivery job ---------------------------------------------------------------------------------
def webhook(settings: AlertingSettings, name: str) -> WebhookSettings:
    for wh in settings.webhooks:
        if wh.name == name:
            return wh
    raise NotFound(f"webhook {name!r} is not configured (alerting.webhooks in herald.yaml)")


def _secret(wh: WebhookSettings) -> str | None:
    if wh.secret_env is None:
        return None
    value = os.environ.get(wh.secret_env)
    if not value:
        raise ConfigurationError(
            f"webhook {wh.name!r}: environment variable {wh.secret_env} (its signing secret) "
            "is not set in this worker"
        )
    return value


def deliver_once(
    wh: WebhookSettings, event: dict[str, Any], policy: EgressPolicy | None = None
) -> dict[str, Any]:
    """POST ``event`` to ``wh`` once; raise a retryable or a final error on failure.

    The egress policy applies (``policy``, the strict default without one): a receiver on a private or
    loopback address needs its host in ``security.egress.allowed_hosts``."""
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    msg_id = str(event.get("id") or "")
    timestamp = int(time.time())
    headers = {
        **wh.headers,
        "content-type": "application/cloudevents+json",
        "user-agent": "herald-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
    }
    secret = _secret(wh)
    if secret is not None:
        headers["webhook-signature"] = sign(secret, msg_id, timestamp, body)
    try:
        transport = EgressTransport(policy or EgressPolicy())
        with httpx.Client(
            timeout=wh.timeout_s, follow_redirects=False, transport=transport
        ) as client:
            resp = client.post(wh.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise BackendUnavailable(
            f"webhook {wh.name!r}: {wh.url} unreachable ({type(exc).__name__}: {exc}); retrying"
        ) from None
    if 200 <= resp.status_code < 300:
        return {"webhook": wh.name, "status": resp.status_code, "event": msg_id}
    detail = resp.text[:200].strip()
    if resp.status_code >= 500 or resp.status_code in RETRY_STATUSES:
        raise BackendUnavailable(
            f"webhook {wh.name!r}: {wh.url} answered {resp.status_code} {detail!r}; retrying"
        )
    raise DeliveryRefused(
        f"webhook {wh.name!r}: {wh.url} refused the alert with {resp.status_code} {detail!r} "
        "(not retried: fix the receiver or the webhook settings)"
    )


@job(DELIVER_JOB, executor="inline")
def deliver(
    webhook_name: str, event: dict[str, Any], ctx: JobContext | None = None
) -> dict[str, Any]:
    """Deliver one alert message to one configured webhook (signed; retried by the job policy)."""
    settings = Services.of_job(ctx).settings  # the worker's (inline): its herald.yaml webhooks
    wh = webhook(settings.alerting, webhook_name)
    result = deliver_once(wh, event, EgressPolicy.of(settings))
    if ctx is not None:
        ctx.log(f"delivered {event.get('type')} {event.get('id')} → {wh.url}: {result['status']}")
    return result


# sensors --------------------------------------------------------------------------------------
def _forwarder(wh: WebhookSettings) -> Any:
    def forward(msg: Any, ctx: SensorContext) -> None:
        ctx.run_job(
            DELIVER_JOB,
            {"webhook_name": wh.name, "event": ctx.event.to_cloudevent()},
            executor="inline",
            max_attempts=wh.max_attempts,
        )

    forward.__doc__ = f"Forward {', '.join(wh.types)} to webhook {wh.name!r} ({wh.url})."
    return forward


def install(settings: AlertingSettings, registry: SensorRegistry, catalog: Catalog) -> list[str]:
    """Add one sensor per configured webhook; returns the sensor names.

    Unknown message types are refused here (at start) with the webhook's name, not at the first
    alert.
    """
    names: list[str] = []
    for wh in settings.webhooks:
        unknown = [t for t in wh.types if t not in catalog]
        if unknown:
            raise ConfigurationError(
                f"alerting.webhooks[{wh.name}].types: unknown message type(s) "
                f"{', '.join(unknown)} (see GET /v1/catalog)"
            )
        name = SENSOR_PREFIX + wh.name
        if registry.get(name) is None:
            sensor(on=list(wh.types), name=name, registry=registry)(_forwarder(wh))
        names.append(name)
    return names
