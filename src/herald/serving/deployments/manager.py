"""The deployment manager: applies deployment revisions to this process's data plane.

* ``route(model, user)`` is registered with :meth:`ModelPool.add_router`: a deployment's
  request goes to a target chosen by weight (sticky per ``user`` by consistent hashing), then
  to the healthy replica of that target with the fewest outstanding requests;
* ``apply(name)`` (blue-green): loads and health-checks the new revision's replicas *before*
  the routing table is swapped; replicas the new revision does not reuse are drained (their
  requests finish) and closed afterwards, so a switch fails no request. A revision that only
  changes weights reuses every loaded replica;
* a replica whose backend fails (5xx, crash) is taken out of rotation at once; a background
  health check returns it after a cool-down. If no replica is healthy the request gets 503;
* the desired state lives in a :class:`DeploymentStore` every role sees (the PostgreSQL
  database, or the home's SQLite file when embedded): a change written elsewhere
  (``herald worker``'s sensors) is noticed within ``poll_s`` and applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from herald.errors import HeraldError
from herald.messages.base import Message
from herald.security.egress import AsyncEgressTransport, EgressPolicy, check_url
from herald.security.secrets import check_caller_options, secret_for
from herald.serving.backends import create_backend
from herald.serving.deployments.messages import DeploymentFailed, DeploymentReady
from herald.serving.deployments.models import (
    Deployment,
    InvalidDeployment,
    Target,
    pick,
    user_point,
)
from herald.serving.deployments.replicas import DeploymentReplica
from herald.serving.deployments.store import DeploymentStore
from herald.serving.errors import ModelUnavailable
from herald.serving.pool import ModelPool, ModelSpec, Replica

if TYPE_CHECKING:
    from herald.registry import Registry
    from herald.settings import DeploymentSettings

log = logging.getLogger("herald.serving.deployments")
Emit = Callable[[Message], Awaitable[Any]]
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"


class DeploymentMetrics:
    """``herald_deployment_*``: per deployment and version (bounded by targets ≤ 8)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        labels = ["deployment", "version"]
        self.requests = Counter(
            "herald_deployment_requests", "Requests routed to a version", labels, registry=r
        )
        self.weight = Gauge(
            "herald_deployment_traffic_weight", "Traffic share of a version (%)", labels, registry=r
        )
        self.replicas = Gauge(
            "herald_deployment_replicas",
            "Replicas of a version by health",
            [*labels, "state"],
            registry=r,
        )
        self.failovers = Counter(
            "herald_deployment_replica_failures",
            "Replicas taken out of rotation",
            labels,
            registry=r,
        )
        self.revision = Gauge(
            "herald_deployment_revision", "Revision being served", ["deployment"], registry=r
        )


@dataclass
class Group:
    """The replicas of one target."""

    target: Target
    replicas: list[DeploymentReplica]
    rr: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def version(self) -> str:
        return self.target.version or self.target.model

    def healthy(self) -> list[DeploymentReplica]:
        return [r for r in self.replicas if r.healthy]

    def choose(self) -> DeploymentReplica | None:
        ok = self.healthy()
        if not ok:
            return None
        low = min(r.outstanding for r in ok)
        best = [r for r in ok if r.outstanding == low]
        return best[next(self.rr) % len(best)]


@dataclass
class Active:
    deployment: Deployment
    groups: list[Group]

    @property
    def revision(self) -> int:
        return self.deployment.revision


def _fingerprint(t: Target) -> tuple[str, str | None, str]:
    import json

    return (t.version or t.model, t.backend, json.dumps(t.options, sort_keys=True, default=str))


class DeploymentManager:
    """Deployments of this process: routing, blue-green application, health, drains."""

    def __init__(
        self,
        pool: ModelPool,
        store: DeploymentStore,
        *,
        registry: Registry | None = None,
        settings: DeploymentSettings | None = None,
        emit: Emit | None = None,
        metrics: DeploymentMetrics | None = None,
        poll_s: float = 1.0,
        security: Any = None,
    ) -> None:
        from herald.settings import DeploymentSettings

        self.pool = pool
        self.store = store
        self.registry = registry
        self.settings = settings or DeploymentSettings()
        self.emit = emit
        self.metrics = metrics or DeploymentMetrics()
        self.poll_s = poll_s
        self.security = security  # settings.security: egress policy and named secrets
        self.serving = False  # set when this process mounts the data plane (HTTP routes)
        self.active: dict[str, Active] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._generation = -1
        self._checked = 0.0
        self._known: set[str] = set()
        self._failed: dict[str, int] = {}  # name → revision that failed to apply here
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._closed = False
        pool.add_router(self.route)
        pool.listers.append(self.listed)

    # routing ---------------------------------------------------------------------------------
    async def route(self, model: str, user: str | None) -> Replica | None:
        """The replica serving ``model`` for ``user``, or None if ``model`` is no deployment."""
        self.ensure_started()
        active = self.active.get(model)
        if active is None:
            await self._refresh_known()
            if model not in self._known:
                return None
            await self.apply(model)
            active = self.active.get(model)
            if active is None:
                dep = self.store.find(model)
                raise ModelUnavailable(
                    f"deployment {model!r} is not ready"
                    + (f": {dep.error}" if dep is not None and dep.error else "")
                )
        groups = active.groups
        weights = [g.target.weight if g.healthy() else 0.0 for g in groups]
        if sum(weights) <= 0:  # failover: any healthy replica, even of a 0 % target
            weights = [1.0 if g.healthy() else 0.0 for g in groups]
        if sum(weights) <= 0:
            raise ModelUnavailable(
                f"deployment {model!r} has no healthy replica (see GET /v1/deployments/{model})",
                headers={"Retry-After": "5"},
            )
        g = groups[pick(weights, user_point(model, user) if user else None)]
        chosen = g.choose()
        assert chosen is not None  # the group had a healthy replica
        self.metrics.requests.labels(model, g.version).inc()
        chosen.replica.last_used = time.monotonic()  # a drain waits past this
        return chosen.replica

    def listed(self) -> list[ModelSpec]:
        return [
            ModelSpec(name, "deployment", name, version=a.groups[0].version, source="deployment")
            for name, a in self.active.items()
        ]

    async def _refresh_known(self, *, force: bool = False) -> bool:
        """Re-read deployment names if the store changed (at most every ``poll_s``)."""
        now = time.monotonic()
        if not force and now - self._checked < self.poll_s:
            return False
        self._checked = now
        gen = await asyncio.to_thread(self.store.generation)
        if gen == self._generation:
            return False
        self._generation = gen
        self._known = {d.name for d in await asyncio.to_thread(self.store.list)}
        return True

    # applying --------------------------------------------------------------------------------
    def lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def apply(self, name: str) -> Message | None:
        """Bring ``name`` to its stored revision; returns ``deployment.ready`` /
        ``deployment.failed`` / ``deployment.deleted``-style outcome, or None when nothing
        changed."""
        async with self.lock(name):
            return await self.apply_locked(name)

    async def apply_locked(self, name: str) -> Message | None:
        """:meth:`apply` for a caller that holds :meth:`lock` (the sensors)."""
        dep = await asyncio.to_thread(self.store.find, name)
        current = self.active.get(name)
        if dep is None:
            if current is not None:
                await self.remove(name)
            return None
        if current is not None and current.revision == dep.revision:
            return None
        if dep.status == "failed" and current is None and self._failed.get(name) == dep.revision:
            return None  # a revision that failed here before is not retried on every request
        try:
            groups = await self._build(dep, current)
        except Exception as exc:
            msg = exc.message if isinstance(exc, HeraldError) else f"{type(exc).__name__}: {exc}"
            log.error("deployment %s revision %d failed: %s", name, dep.revision, msg)
            self._failed[name] = dep.revision
            await asyncio.to_thread(self.store.update_status, name, dep.revision, "failed", msg)
            return DeploymentFailed(name=name, revision=dep.revision, error=msg, instance=INSTANCE)
        self.active[name] = Active(dep, groups)  # the switch: one assignment
        self._known.add(name)
        kept = {id(r) for g in groups for r in g.replicas}
        if current is not None:
            old = [r for g in current.groups for r in g.replicas if id(r) not in kept]
            self._spawn(self._drain(old))
            self._clear_metrics(name, current, keep={g.version for g in groups})
        self._set_metrics(name, self.active[name])
        await asyncio.to_thread(self.store.update_status, name, dep.revision, "ready", None)
        log.info(
            "deployment %s revision %d ready: %s",
            name,
            dep.revision,
            ", ".join(f"{g.version} {g.target.weight:g}% x{len(g.replicas)}" for g in groups),
        )
        return DeploymentReady(
            name=name,
            revision=dep.revision,
            targets=[t.model_dump(exclude={"options"}) for t in dep.targets],
            replicas=sum(len(g.replicas) for g in groups),
            instance=INSTANCE,
        )

    async def _build(self, dep: Deployment, current: Active | None) -> list[Group]:
        reusable: dict[tuple[str, str | None, str], list[DeploymentReplica]] = {}
        if current is not None:
            for g in current.groups:
                reusable[_fingerprint(g.target)] = list(g.replicas)
        groups: list[Group] = []
        loaded: list[DeploymentReplica] = []
        try:
            for t in dep.targets:
                if t.version is None:
                    raise InvalidDeployment(f"target {t.model} was not resolved to a version")
                reps = reusable.pop(_fingerprint(t), [])[: t.replicas]
                if len(reps) < t.replicas:
                    spec = await self._spec(dep.name, t)
                    for i in range(len(reps), t.replicas):
                        rep = await self._load(spec, i)
                        loaded.append(rep)
                        reps.append(rep)
                for r in reps:
                    r.on_failed = self._failed_cb(dep.name)
                groups.append(Group(t, reps))
        except BaseException:
            for r in loaded:  # a half-built revision frees what it loaded
                with contextlib.suppress(Exception):
                    await r.watched.close()
            raise
        return groups

    async def _spec(self, name: str, t: Target) -> ModelSpec:
        assert t.version is not None
        base: ModelSpec | None = None
        error: str | None = None
        try:
            base = await asyncio.to_thread(self.pool.spec_from_registry, t.version, self.registry)
        except HeraldError as exc:
            error = exc.message
        if t.backend is None:
            if base is None:
                raise InvalidDeployment(
                    f"{t.version} cannot be served: "
                    + (error or "not found in the registry or it has no loadable files")
                )
            return ModelSpec(
                name,
                base.backend,
                base.model,
                {**base.options, **t.options},
                base.parent,
                t.version,
                "deployment",
            )
        model = base.model if base is not None else await self._artifact(t.version)
        options = {**(base.options if base is not None else {}), **t.options}
        parent = base.parent if base is not None else None
        return ModelSpec(name, t.backend, model, options, parent, t.version, "deployment")

    async def _artifact(self, version: str) -> str:
        if self.registry is None:
            raise InvalidDeployment("deployments need a model registry")
        mv = await asyncio.to_thread(self.registry.resolve, version)
        return mv.artifact_uri

    def check_targets(self, targets: Sequence[Target]) -> None:
        """Upstreams of ``openai`` targets against the egress policy and their named secrets
        (the API checks at once: 403/422; :meth:`_load` checks again)."""
        for t in targets:
            if t.backend == "openai":
                self._upstream(t.options, connect=False)

    def _upstream(self, options: dict[str, Any], *, connect: bool = True) -> dict[str, Any]:
        """Options of a caller's ``openai`` backend: base_url checked by the egress policy,
        ``api_key_secret`` resolved for that host only, connections through the policy."""
        check_caller_options(options)
        out = dict(options)
        base_url = str(out.get("base_url") or "")
        if base_url:
            check_url(base_url, self.security)
        name = out.pop("api_key_secret", None)
        if name:
            out["api_key"] = secret_for(str(name), base_url, self.security)
        if connect:
            out["transport"] = AsyncEgressTransport(EgressPolicy.of(self.security))
        return out

    async def _load(self, spec: ModelSpec, index: int) -> DeploymentReplica:
        options = {**self.pool.default_options.get(spec.backend, {}), **spec.options}
        if spec.source == "deployment" and spec.backend == "openai":
            options = await asyncio.to_thread(self._upstream, options)
        started = time.perf_counter()
        backend = create_backend(spec.backend, spec.model, **options)
        try:
            await backend.load()
            if not await backend.health():
                raise InvalidDeployment(
                    f"replica {index} of {spec.version} failed its health check after loading"
                )
        except BaseException:
            with contextlib.suppress(Exception):
                await backend.close()
            raise
        self.pool.metrics.loads.labels(spec.name, spec.backend).inc()
        self.pool.metrics.load_seconds.labels(spec.name, spec.backend).observe(
            time.perf_counter() - started
        )
        return DeploymentReplica(spec, backend, self.pool.max_queue, index)

    def _failed_cb(self, name: str) -> Callable[[DeploymentReplica], None]:
        def cb(rep: DeploymentReplica) -> None:
            self.metrics.failovers.labels(name, rep.spec.version).inc()
            active = self.active.get(name)
            if active is not None:
                self._set_metrics(name, active)

        return cb

    async def _drain(self, replicas: list[DeploymentReplica], grace_s: float = 0.5) -> None:
        """Wait for the requests of replicas leaving rotation, then close them."""
        deadline = time.monotonic() + self.settings.drain_timeout_s
        for r in replicas:
            while time.monotonic() < deadline and (  # noqa: ASYNC110
                r.outstanding > 0 or time.monotonic() - r.replica.last_used < grace_s
            ):  # Replica has no event for "idle": poll its counters
                await asyncio.sleep(0.05)
            if r.outstanding:
                log.warning(
                    "closing replica of %s with %d requests after the drain timeout",
                    r.spec.version,
                    r.outstanding,
                )
            with contextlib.suppress(Exception):
                await r.watched.close()

    async def remove(self, name: str) -> bool:
        """Stop serving ``name`` here (drain + close its replicas)."""
        active = self.active.pop(name, None)
        self._known.discard(name)
        if active is None:
            return False
        self._clear_metrics(name, active, keep=set())
        self.metrics.revision.remove(name)
        await self._drain([r for g in active.groups for r in g.replicas])
        return True

    # metrics ---------------------------------------------------------------------------------
    def _set_metrics(self, name: str, active: Active) -> None:
        self.metrics.revision.labels(name).set(active.revision)
        total = sum(g.target.weight for g in active.groups) or 1.0
        for g in active.groups:
            self.metrics.weight.labels(name, g.version).set(100.0 * g.target.weight / total)
            ok = len(g.healthy())
            self.metrics.replicas.labels(name, g.version, "healthy").set(ok)
            self.metrics.replicas.labels(name, g.version, "unhealthy").set(len(g.replicas) - ok)

    def _clear_metrics(self, name: str, active: Active, keep: set[str]) -> None:
        for g in active.groups:
            if g.version in keep:
                continue
            with contextlib.suppress(KeyError):
                self.metrics.weight.remove(name, g.version)
            for state in ("healthy", "unhealthy"):
                with contextlib.suppress(KeyError):
                    self.metrics.replicas.remove(name, g.version, state)

    # background ------------------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the health-check / store-watch loop (lazily, in the serving event loop)."""
        if self._loop_task is None and not self._closed:
            self._loop_task = asyncio.get_running_loop().create_task(
                self._loop(), name="deployments"
            )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _loop(self) -> None:
        last_health = time.monotonic()
        while True:
            try:
                await asyncio.sleep(self.poll_s)
                if await self._refresh_known(force=True):
                    await self.sync()
                if time.monotonic() - last_health >= self.settings.health_interval_s:
                    last_health = time.monotonic()
                    await self.check_health()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("deployment loop failed; retrying")

    async def sync(self) -> None:
        """Apply every stored revision that differs from what this process serves."""
        names = set(self._known) | set(self.active)
        for name in sorted(names):
            outcome = await self.apply(name)
            if outcome is not None and self.emit is not None:
                try:
                    await self.emit(outcome)
                except Exception:
                    log.exception("could not emit %s", outcome.message_type)

    async def check_health(self) -> dict[str, list[dict[str, Any]]]:
        """Health-check every replica now (also run every ``health_interval_s``)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for name, active in list(self.active.items()):
            for g in active.groups:
                for r in g.replicas:
                    await r.check(self.settings.health_interval_s)
            self._set_metrics(name, active)
            out[name] = self.describe_active(name)
        return out

    def describe_active(self, name: str) -> list[dict[str, Any]]:
        active = self.active.get(name)
        if active is None:
            return []
        return [
            {
                "model": g.target.model,
                "version": g.version,
                "weight": g.target.weight,
                "replicas": [r.describe() for r in g.replicas],
            }
            for g in active.groups
        ]

    async def close(self) -> None:
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(BaseException):
                await self._loop_task
        for name in list(self.active):
            active = self.active.pop(name)
            for g in active.groups:
                for r in g.replicas:
                    with contextlib.suppress(Exception):
                        await r.watched.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
