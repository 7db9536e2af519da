"""A Python client for a running Herald: ``herald.Client(base_url, api_key)``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from herald.errors import (
    AuthError,
    Conflict,
    HeraldError,
    MessageValidationError,
    NotFound,
    PayloadTooLarge,
    UnknownMessageType,
)
from herald.messages.base import Message
from herald.messages.envelope import Envelope
from herald.security.files import PathNotAllowed

_BY_CODE: dict[str, type[HeraldError]] = {
    "unknown_message_type": UnknownMessageType,
    "invalid_payload": MessageValidationError,
    "payload_too_large": PayloadTooLarge,
    "not_found": NotFound,
    "conflict": Conflict,
    "unauthorized": AuthError,
    "path_not_allowed": PathNotAllowed,
}


class Client:
    """Talks to Herald's REST API. Errors come back as :class:`herald.HeraldError` subclasses."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if base_url is None or api_key is None:
            import os

            from herald.auth import read_api_key
            from herald.settings import default_home

            base_url = base_url or os.environ.get("HERALD_URL", "http://127.0.0.1:8700")
            api_key = api_key or read_api_key(default_home(), os.environ.get("HERALD_API_KEY"))
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # plumbing -----------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise HeraldError(f"cannot reach Herald at {self.base_url}: {exc}") from exc
        if r.status_code >= 400:
            raise _error(r)
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    # paging -------------------------------------------------------------------------------
    def page(
        self, path: str, *, limit: int | None = None, cursor: str | None = None, **filters: Any
    ) -> dict[str, Any]:
        """One page of a list endpoint: ``{"data": [...], "next_cursor": str | None}``.

        ``path`` is a list endpoint (``/v1/jobs``, ``/v1/dead-letters``, ``/v1/evaluations``,
        ``/v1/registry/models``, ``/v1/registry/models/NAME/versions``, ``/v1/runs``); pass the
        previous page's ``next_cursor`` as ``cursor`` for the next one (None on the last page).
        """
        params = {**filters, "limit": limit, "cursor": cursor}
        body = self._request("GET", path, params={k: v for k, v in params.items() if v is not None})
        return {"data": list(body["data"]), "next_cursor": body.get("next_cursor")}

    def iterate(
        self, path: str, *, limit: int | None = None, cursor: str | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Every row of a list endpoint, fetching page after page (``limit`` rows each) by
        cursor; rows created meanwhile are newer than the cursor and are not repeated."""
        while True:
            got = self.page(path, limit=limit, cursor=cursor, **filters)
            yield from got["data"]
            cursor = got["next_cursor"]
            if not cursor:
                return

    # messages -----------------------------------------------------------------------------
    def emit(
        self,
        message: Message | str,
        data: dict[str, Any] | None = None,
        *,
        subject: str | None = None,
        correlationid: str | None = None,
        causationid: str | None = None,
    ) -> Envelope:
        """Publish a typed message (or a type name plus data); returns the stored envelope."""
        if isinstance(message, Message):
            type_name, payload = message.message_type, message.payload()
        else:
            type_name, payload = message, data or {}
        body: dict[str, Any] = {"type": type_name, "data": payload}
        if subject is not None:
            body["subject"] = subject
        if correlationid is not None:
            body["correlationid"] = correlationid
        if causationid is not None:
            body["causationid"] = causationid
        return Envelope.model_validate(self._request("POST", "/v1/messages", json=body))

    def messages(self, **filters: Any) -> list[Envelope]:
        params = {k: v for k, v in filters.items() if v is not None}
        data = self._request("GET", "/v1/messages", params=params)
        return [Envelope.model_validate(e) for e in data["data"]]

    def message(self, event_id: str) -> Envelope:
        return Envelope.model_validate(self._request("GET", f"/v1/messages/{event_id}"))

    def stream(self, *, after: int | None = None, **filters: Any) -> Iterator[Envelope]:
        """Follow new messages (SSE) until the caller stops iterating."""
        params = {k: v for k, v in filters.items() if v is not None}
        if after is not None:
            params["after"] = after
        with self._http.stream("GET", "/v1/messages/stream", params=params, timeout=None) as r:
            if r.status_code >= 400:
                r.read()
                raise _error(r)
            for line in r.iter_lines():
                if line.startswith("data:"):
                    yield Envelope.model_validate_json(line[5:].strip())

    def wait_for(
        self, type: str, *, correlationid: str | None = None, timeout: float = 30.0
    ) -> Envelope:
        """The first ``type`` message (of the flow ``correlationid``), once a sensor has
        produced it; raises :class:`TimeoutError` after ``timeout`` seconds."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            got = self.messages(type=type, correlationid=correlationid, limit=1)
            if got:
                return got[0]
            if time.monotonic() >= deadline:
                where = f" in flow {correlationid}" if correlationid else ""
                raise TimeoutError(f"no {type} message{where} within {timeout:g} s")
            time.sleep(0.1)

    def flow(self, correlationid: str, *, progress: str = "all") -> dict[str, Any]:
        """The causal graph of a flow; ``progress="collapsed"`` folds each job's
        ``*.progressed`` messages into one node per job and type."""
        return dict(
            self._request("GET", f"/v1/flows/{correlationid}", params={"progress": progress})
        )

    def catalog(self) -> dict[str, Any]:
        return dict(self._request("GET", "/v1/catalog"))

    # sensors, jobs, dead letters ---------------------------------------------------------------
    def sensors(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/v1/sensors")["data"])

    def set_sensor_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        action = "enable" if enabled else "disable"
        return dict(self._request("POST", f"/v1/sensors/{name}/{action}"))

    def jobs(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of jobs, newest first (``limit``, ``cursor``; :meth:`iterate` for all)."""
        params = {k: v for k, v in filters.items() if v is not None}
        return list(self._request("GET", "/v1/jobs", params=params)["data"])

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/jobs/{job_id}"))

    def job_logs(self, job_id: str, after: int = 0) -> list[dict[str, Any]]:
        return list(
            self._request("GET", f"/v1/jobs/{job_id}/logs", params={"after": after})["data"]
        )

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return dict(self._request("POST", f"/v1/jobs/{job_id}/cancel"))

    def retry_job(self, job_id: str) -> dict[str, Any]:
        return dict(self._request("POST", f"/v1/jobs/{job_id}/retry"))

    def dead_letters(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of dead letters, newest first (``limit``, ``cursor``)."""
        params = {k: v for k, v in filters.items() if v is not None}
        return list(self._request("GET", "/v1/dead-letters", params=params)["data"])

    def replay(self, dead_letter_id: str) -> dict[str, Any]:
        return dict(self._request("POST", f"/v1/dead-letters/{dead_letter_id}/replay"))

    def health(self) -> dict[str, Any]:
        return dict(self._request("GET", "/healthz"))

    # registry: models, data sets, runs ---------------------------------------------------------
    def models(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of models by name (``limit``, ``cursor``; see :meth:`page`)."""
        return list(self.page("/v1/registry/models", **filters)["data"])

    def model_versions(self, name: str, **filters: Any) -> list[dict[str, Any]]:
        """One page of a model's versions, newest first (``limit``, ``cursor``)."""
        return list(self.page(f"/v1/registry/models/{_seg(name)}/versions", **filters)["data"])

    def evaluations(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of evaluations, newest first (suite/target/model_version/status filters)."""
        return list(self.page("/v1/evaluations", **filters)["data"])

    def model(self, name: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/registry/models/{_seg(name)}"))

    def model_version(self, name: str, version: int) -> dict[str, Any]:
        return dict(
            self._request("GET", f"/v1/registry/models/{_seg(name)}/versions/{int(version)}")
        )

    def resolve_model(self, uri: str) -> dict[str, Any]:
        """``models:/name@alias`` / ``models:/name/3`` / ``models:/name`` → the version."""
        return dict(self._request("GET", "/v1/registry/resolve", params={"uri": uri}))

    def model_card(self, name: str, version: int) -> str:
        path = f"/v1/registry/models/{_seg(name)}/versions/{int(version)}/card"
        try:
            r = self._http.get(path)
        except httpx.HTTPError as exc:
            raise HeraldError(f"cannot reach Herald at {self.base_url}: {exc}") from exc
        if r.status_code >= 400:
            raise _error(r)
        return r.text

    def alias_history(self, name: str, alias: str | None = None) -> list[dict[str, Any]]:
        params = {"alias": alias} if alias else {}
        path = f"/v1/registry/models/{_seg(name)}/aliases/history"
        return list(self._request("GET", path, params=params)["data"])

    def promote(
        self, name: str, version: int, alias: str = "champion", *, reason: str = ""
    ) -> Envelope:
        """Publish ``model.promote`` (applied by the registry sensor); returns the message."""
        path = f"/v1/registry/models/{_seg(name)}/versions/{int(version)}/promote"
        body = {"alias": alias, "reason": reason}
        return Envelope.model_validate(self._request("POST", path, json=body))

    def archive(self, name: str, version: int, *, reason: str = "") -> Envelope:
        """Publish ``model.archive`` (applied by the registry sensor); returns the message."""
        path = f"/v1/registry/models/{_seg(name)}/versions/{int(version)}/archive"
        return Envelope.model_validate(self._request("POST", path, json={"reason": reason}))

    def datasets(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/v1/datasets")["data"])

    def dataset(self, name: str, version: int | None = None) -> dict[str, Any]:
        """``{"name", "latest", "versions"}``, or one version's record when ``version`` is set."""
        if version is not None:
            path = f"/v1/datasets/{_seg(name)}/versions/{int(version)}"
            return dict(self._request("GET", path))
        return dict(self._request("GET", f"/v1/datasets/{_seg(name)}"))

    def runs(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of runs, newest first (``limit``, ``cursor``)."""
        params = {k: v for k, v in filters.items() if v is not None}
        return list(self._request("GET", "/v1/runs", params=params)["data"])

    def run(self, run_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/runs/{_seg(run_id)}"))

    def run_metrics(
        self, run_id: str, keys: list[str] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        params = {"keys": ",".join(keys)} if keys else {}
        data = self._request("GET", f"/v1/runs/{_seg(run_id)}/metrics", params=params)
        return dict(data["metrics"])

    def compare_runs(self, run_ids: list[str]) -> dict[str, Any]:
        return dict(self._request("GET", "/v1/runs/compare", params={"ids": ",".join(run_ids)}))

    # deployments, batches, client keys (/v1/deployments, /v1/batches, /v1/keys) ---------------
    def deployments(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/v1/deployments")["data"])

    def deployment(self, name: str) -> dict[str, Any]:
        """Desired state (targets, revision, status) and the live replicas of ``name``."""
        return dict(self._request("GET", f"/v1/deployments/{_seg(name)}"))

    def deploy(
        self,
        name: str,
        targets: list[dict[str, Any]],
        *,
        guardrails: list[dict[str, Any]] | None = None,
        follow_aliases: bool = True,
        canary: dict[str, Any] | None = None,
        reason: str = "",
    ) -> dict[str, Any]:
        """Publish ``deployment.requested``; returns ``{"deployment", "message_id", ...}``.
        ``canary``: the rollback policy (``{"enabled", "compare_with_stable", "min_scores",
        "on_failed_thresholds"}``)."""
        body: dict[str, Any] = {
            "name": name,
            "targets": targets,
            "follow_aliases": follow_aliases,
            "reason": reason,
        }
        if guardrails is not None:
            body["guardrails"] = guardrails
        if canary is not None:
            body["canary"] = canary
        return dict(self._request("POST", "/v1/deployments", json=body))

    def set_traffic(
        self,
        name: str,
        weights: dict[str, float] | None = None,
        *,
        add: list[dict[str, Any]] | None = None,
        reason: str = "",
    ) -> dict[str, Any]:
        """Publish ``deployment.traffic.changed``: new weights (keys: target URI or resolved
        version) and targets to ``add`` (a canary: ``[{"model": "models:/x/3", "weight": 10}]``)."""
        body = {"weights": weights or {}, "add": add or [], "reason": reason}
        return dict(self._request("POST", f"/v1/deployments/{_seg(name)}/traffic", json=body))

    def rollback_deployment(self, name: str, *, reason: str = "") -> dict[str, Any]:
        """Publish ``deployment.rollback`` (back to the previous revision's targets)."""
        path = f"/v1/deployments/{_seg(name)}/rollback"
        return dict(self._request("POST", path, json={"reason": reason}))

    def delete_deployment(self, name: str) -> dict[str, Any]:
        """Publish ``deployment.delete``."""
        return dict(self._request("DELETE", f"/v1/deployments/{_seg(name)}"))

    def create_batch(
        self,
        input_file_id: str,
        *,
        endpoint: str = "/v1/chat/completions",
        concurrency: int = 4,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start a batch over an OpenAI Batch JSONL in the artifact store (URI or key)."""
        body: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "concurrency": concurrency,
        }
        if metadata is not None:
            body["metadata"] = metadata
        return dict(self._request("POST", "/v1/batches", json=body))

    def batch(self, batch_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/batches/{_seg(batch_id)}"))

    def api_keys(self) -> list[dict[str, Any]]:
        """Client API keys (admin only; revoked ones included, secrets never)."""
        return list(self._request("GET", "/v1/keys")["data"])

    def create_api_key(
        self, name: str, scopes: list[str] | None = None, rate_per_minute: float | None = None
    ) -> dict[str, Any]:
        """Create a client key; the returned ``key`` is the only time the secret is shown."""
        body: dict[str, Any] = {"name": name, "scopes": scopes or ["inference"]}
        if rate_per_minute is not None:
            body["rate_per_minute"] = rate_per_minute
        return dict(self._request("POST", "/v1/keys", json=body))

    def revoke_api_key(self, key_id: str) -> dict[str, Any]:
        return dict(self._request("DELETE", f"/v1/keys/{_seg(key_id)}"))


def _seg(value: str) -> str:
    """One URL path segment, percent-encoded (the server validates the decoded name)."""
    from urllib.parse import quote

    return quote(str(value), safe="")


def _error(r: httpx.Response) -> HeraldError:
    try:
        err = r.json()["error"]
        message, code = err.get("message", r.text), err.get("code") or err.get("type", "")
        details = err.get("details")
    except (ValueError, KeyError, TypeError):
        message, code, details = r.text or r.reason_phrase, "", None
    cls = _BY_CODE.get(code, HeraldError)
    exc = cls(f"{message} (HTTP {r.status_code})", details=details)
    exc.status = r.status_code
    return exc


__all__ = ["Client"]
