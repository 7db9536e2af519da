"""Throttling of failed authentication per client address (``security.auth``).

Wrong Bearer keys and failed dashboard logins count against the client address they came
from. Once an address reaches ``max_failures`` within ``failure_window_s`` it is locked out
for ``lockout_s``: every request from it that needs authentication gets 429 with
``Retry-After`` — the key is not even checked, so guessing goes no faster — while other
addresses, and their keys, are unaffected. A lockout is logged (WARNING, logger
``herald.security``) and counted (``herald_auth_failures_total{kind}``,
``herald_auth_lockouts_total{kind}``).

The counts live in this process's memory (bounded: the oldest of ``MAX_CLIENTS`` addresses is
forgotten first), so N processes behind a load balancer allow up to N times the failures; the
sessions and keys themselves are shared (:mod:`herald.store.sessions`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter

if TYPE_CHECKING:
    from herald.settings import AuthSecuritySettings

log = logging.getLogger("herald.security")

MAX_CLIENTS = 100_000
_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, tuple[Counter, Counter]] = (
    weakref.WeakKeyDictionary()
)


def _counters(registry: CollectorRegistry | None) -> tuple[Counter, Counter]:
    """The failure and lockout counters of ``registry`` (registered once per registry)."""
    registry = registry if registry is not None else CollectorRegistry()
    found = _COUNTERS.get(registry)
    if found is None:
        found = (
            Counter(
                "herald_auth_failures",
                "Failed authentications (wrong API key, failed dashboard login)",
                ["kind"],
                registry=registry,
            ),
            Counter(
                "herald_auth_lockouts",
                "Client addresses locked out after too many failed authentications",
                ["kind"],
                registry=registry,
            ),
        )
        _COUNTERS[registry] = found
    return found


class _Client:
    __slots__ = ("failures", "locked_until")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.locked_until = 0.0


class FailureThrottle:
    """Counts failed authentications per client address and locks noisy addresses out."""

    def __init__(
        self,
        max_failures: int = 10,
        failure_window_s: float = 60.0,
        lockout_s: float = 60.0,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = failure_window_s
        self.lockout_s = lockout_s
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._lock = threading.Lock()
        self._failed, self._lockouts = _counters(registry)

    @classmethod
    def from_settings(
        cls, settings: AuthSecuritySettings, registry: CollectorRegistry | None = None
    ) -> FailureThrottle:
        return cls(
            settings.max_failures,
            settings.failure_window_s,
            settings.lockout_s,
            registry=registry,
        )

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again while it is locked out; else None."""
        with self._lock:
            state = self._clients.get(client)
            if state is None:
                return None
            left = state.locked_until - self._clock()
        return max(1, math.ceil(left)) if left > 0 else None

    def failure(self, client: str, kind: str) -> int | None:
        """Record a failed authentication of ``kind`` (``api_key``, ``login``) from ``client``;
        returns the lockout in seconds when this failure locked it out, else None."""
        self._failed.labels(kind).inc()
        now = self._clock()
        with self._lock:
            state = self._clients.get(client)
            if state is None:
                state = self._clients[client] = _Client()
                if len(self._clients) > MAX_CLIENTS:
                    self._clients.popitem(last=False)
            else:
                self._clients.move_to_end(client)
            fails = state.failures
            fails.append(now)
            while fails and fails[0] <= now - self.window_s:
                fails.popleft()
            if len(fails) < self.max_failures:
                return None
            fails.clear()
            state.locked_until = now + self.lockout_s
        self._lockouts.labels(kind).inc()
        log.warning(
            "locked out client %s for %g s after %d failed authentications (%s) in %g s",
            client,
            self.lockout_s,
            self.max_failures,
            kind,
            self.window_s,
        )
        return max(1, math.ceil(self.lockout_s))

    def refusal(self, retry_after: int) -> tuple[int, str, dict[str, str]]:
        """The 429 (status, message, headers) a locked-out client gets."""
        return (
            429,
            f"too many failed authentications from this address: try again in {retry_after} s "
            "(check the API key you send)",
            {"Retry-After": str(retry_after)},
        )


def client_address(scope: dict[str, object] | object) -> str:
    """The client address of an ASGI scope (the peer; put Herald behind a proxy that sets it,
    e.g. uvicorn's ``--forwarded-allow-ips``)."""
    client = scope.get("client") if isinstance(scope, dict) else None
    if isinstance(client, (list, tuple)) and client:
        return str(client[0])
    return "unknown"
