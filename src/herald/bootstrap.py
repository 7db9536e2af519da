"""The composition root: the one place that wires concrete adapters into a running Herald."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from herald.artifacts import ArtifactStore, open_artifact_store
from herald.bus.base import EventLog, EventQuery, JobSpec
from herald.bus.registry import open_event_log
from herald.capabilities import plugin_modules
from herald.errors import ConfigurationError, JobError
from herald.evaluation.precheck import check_evaluation_request
from herald.jobs.executors import ExecutorSetup, enabled_executors, make_executors
from herald.jobs.executors.base import Executor
from herald.jobs.registry import JobRegistry, default_jobs
from herald.jobs.worker import Worker
from herald.messages.base import Message
from herald.messages.catalog import Catalog, default_catalog
from herald.messages.envelope import Envelope, new_id
from herald.metrics import Metrics
from herald.plugins import load_plugins
from herald.rag.chain_backend import RagChains
from herald.registry import Registry
from herald.security import egress
from herald.security import files as file_policy
from herald.sensors.base import SensorRegistry, default_registry
from herald.sensors.runner import SensorRunner
from herald.services import Services
from herald.serving.deployments import DeploymentManager, DeploymentMetrics, DeploymentStore
from herald.serving.guardrails import GuardrailPipeline
from herald.serving.keys import KeyStore
from herald.serving.metrics import ServingMetrics
from herald.serving.pool import ModelPool
from herald.serving.requestlog import RequestLog
from herald.settings import Settings
from herald.store.sessions import SessionStore
from herald.training.precheck import check_finetune_request

log = logging.getLogger("herald")
OPERATOR_BACKENDS = ("transformers", "embeddings", "vllm")  # load HF model folders


class Herald:
    """A running Herald: event log, catalog, sensors, job worker and metrics."""

    def __init__(
        self,
        settings: Settings,
        *,
        catalog: Catalog | None = None,
        sensors: SensorRegistry | None = None,
        jobs: JobRegistry | None = None,
        event_log: EventLog | None = None,
        load: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog or default_catalog
        self.sensor_registry = sensors or default_registry
        self.jobs = jobs or default_jobs
        # every capability's message types, sensors and jobs (herald.capabilities), then the
        # user's plugins; each process (server, worker, job subprocess) loads the same list
        self.plugins = [*plugin_modules(), *settings.plugins, *(load or [])]
        load_plugins(self.plugins)
        self._install_alerting()
        self._check_rules()
        self.log = event_log or open_event_log(
            settings.resolved_database_url, **self._log_options(settings.resolved_database_url)
        )
        self.metrics = Metrics()
        self.registry = Registry.from_settings(settings)  # opens (and migrates) on first use
        self.artifacts: ArtifactStore = open_artifact_store(
            settings.resolved_artifacts_url, cache_dir=settings.home / "cache" / "artifacts"
        )
        self.services = Services(  # what sensors and inline jobs reach as ctx.services
            settings, registry=self.registry, artifacts=self.artifacts, event_log=self.log
        )
        from herald.monitoring.sensors import install_schedule

        if self.sensor_registry.get("monitoring.schedule") is not None:  # its cron setting
            install_schedule(self.sensor_registry, settings)
        self.serving = ModelPool.from_settings(  # the OpenAI data plane's models (lazy loads)
            settings.serving,
            registry=self.registry,
            metrics=ServingMetrics(self.metrics.registry),
            max_prompt_chars=settings.security.limits.max_prompt_chars,
        )
        for backend in OPERATOR_BACKENDS:  # model code / pickle weights: the operator decides
            self.serving.default_options.setdefault(backend, {}).update(
                trust_remote_code=settings.security.trust_remote_code,
                allow_unsafe_weights=settings.security.allow_unsafe_weights,
            )
        self.deployments = DeploymentManager(  # deployments route before the static models
            self.serving,
            DeploymentStore.from_settings(settings),  # shared database on PostgreSQL
            registry=self.registry,
            settings=settings.serving.deployments,
            emit=self.emit,
            metrics=DeploymentMetrics(self.metrics.registry),
            security=settings.security,
        )
        self.services.deployments = self.deployments  # what the deployment sensors apply
        self.guardrails = GuardrailPipeline.install(self.serving, self, settings.serving)
        self.request_log = RequestLog.install(self.serving, settings)
        self.rag_chains = RagChains.install(  # rag/<collection>@<model> models
            self.serving, lambda: self.services.rag, prompts=lambda r: self.services.prompts.get(r)
        )
        self.keys = KeyStore.from_settings(settings)  # shared database on PostgreSQL
        self.sessions = SessionStore.from_settings(settings)  # dashboard logins, shared too
        self.runner: SensorRunner | None = None
        self.worker: Worker | None = None
        self.started_at: datetime | None = None

    def _log_options(self, url: str) -> dict[str, Any]:
        if self.settings.bus_url:  # e.g. nats://: PostgreSQL stays the truth, the bus carries it
            return {"bus_url": self.settings.bus_url}
        return {"synchronous": self.settings.sqlite_synchronous} if url.startswith("sqlite") else {}

    def _install_alerting(self) -> None:
        from herald.alerting.webhooks import install

        install(self.settings.alerting, self.sensor_registry, self.catalog)

    def _check_rules(self) -> None:
        for spec in self.sensor_registry.all():
            unknown = [t for t in spec.emits if t not in self.catalog]
            if unknown:
                raise ConfigurationError(
                    f"sensor {spec.name} ({spec.origin}) emits unknown message type(s) "
                    f"{', '.join(unknown)}; define them in a plugin first"
                )

    def make_executors(self) -> dict[str, Executor]:
        """Fresh executors for a worker: every enabled one of the executor port
        (:data:`herald.jobs.executors.EXECUTORS`: built-ins and ``herald.executors`` entry
        points)."""
        return make_executors(ExecutorSetup(self.settings, self.plugins, self.services))

    def executor_names(self) -> tuple[str, ...]:
        """Executors jobs may name here: the built-ins plus the enabled cluster executors."""
        return enabled_executors(self.settings)

    async def start(self, *, sensors: bool = True, workers: bool = True) -> None:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        await self.log.start()
        if sensors:
            await self._register_bundled_models()
        if sensors:
            self.runner = SensorRunner(
                self.log,
                self.catalog,
                self.sensor_registry.all(),
                jobs=self.jobs,
                settings=self.settings.sensors,
                job_settings=self.settings.jobs,
                metrics=self.metrics,
                services=self.services,
            )
            await self.runner.start()
        if workers:
            self.worker = Worker(
                self.log,
                self.catalog,
                self.jobs,
                self.make_executors(),
                self.settings.jobs,
                self.metrics,
            )
            await self.worker.start()
        if self.deployments.serving and sensors:  # `herald up`: warm its deployments now;
            self.deployments.ensure_started()  # `herald serve` starts this itself; `herald api`
            # applies them lazily, on its first data-plane request (it is the control plane)
        self.started_at = datetime.now().astimezone()

    async def _register_bundled_models(self) -> None:
        """Make the bundled base models resolvable (``models:/smollm2-135m-instruct``) on first
        start; idempotent and quick (no conversion happens here)."""
        from herald.models import register_bundled_models

        try:
            await asyncio.to_thread(register_bundled_models, self.registry)
        except Exception as exc:  # a missing optional package must not stop Herald
            log.warning("bundled models not registered: %s", exc)

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
        if self.runner is not None:
            await self.runner.stop()
        await self.deployments.close()
        await self.guardrails.close()
        await self.serving.close()
        self.request_log.close()
        await self.log.close()
        self.registry.close()
        self.deployments.store.close()
        self.services.close()  # the stores it opened on first use (monitoring, RAG, …)
        self.keys.close()
        self.sessions.close()

    async def __aenter__(self) -> Herald:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # publishing ---------------------------------------------------------------------------
    def envelope(
        self,
        type: str,
        data: Any,
        *,
        subject: str | None = None,
        correlationid: str | None = None,
        causationid: str | None = None,
        source: str = "herald/api",
        id: str | None = None,
    ) -> Envelope:
        """Validate ``data`` as ``type`` and wrap it (raises 422/413-style errors)."""
        message = self.catalog.validate(type, data)
        file_policy.check_message_paths(type, message, self.settings)  # 403 outside roots
        egress.check_message_urls(type, message, self.settings)  # 403: private/metadata URLs
        if type == "finetune.requested":  # 422 now, not a failed job seconds later
            check_finetune_request(message, self.services)
        elif type == "evaluation.requested":
            check_evaluation_request(message, self.registry, self.settings)
        return self.catalog.envelope(
            message,
            subject=subject,
            correlationid=correlationid,
            causationid=causationid,
            source=source,
            id=id,
        )

    async def publish(self, *envelopes: Envelope) -> list[Envelope]:
        stored = await self.log.append(envelopes)
        for e in stored:
            self.metrics.events_appended.labels(e.type).inc()
        return stored

    async def emit(self, message: Message, **kw: Any) -> Envelope:
        """Append one typed message (Python API)."""
        [stored] = await self.publish(self.catalog.envelope(message, **kw))
        return stored

    async def submit_job(
        self,
        name: str,
        params: dict[str, Any],
        *,
        executor: str | None = None,
        cause: Envelope | None = None,
    ) -> Any:
        """Queue a job directly (API/CLI), validated against its signature."""
        definition = self.jobs.get(name)
        validated = definition.validate(params)
        file_policy.check_job_paths(name, validated, self.settings)
        ex = executor or self.settings.jobs.executor_for(definition.executor)
        known = self.executor_names()
        if ex not in known:
            raise JobError(
                f"unknown executor {ex!r} (known here: {', '.join(known)}; enable ray with "
                "HERALD_JOBS__RAY__ENABLED=true or HERALD_EXECUTOR=ray)"
            )
        spec = JobSpec(
            id=new_id().replace("-", ""),
            name=name,
            params=validated,
            executor=ex,
            max_attempts=definition.max_attempts or self.settings.jobs.max_attempts,
            timeout_s=definition.timeout_s,
        )
        return await self.log.submit_job(spec, cause)

    # lineage ------------------------------------------------------------------------------
    async def flow(self, correlationid: str, limit: int = 5000) -> dict[str, Any]:
        """The causal graph of one flow: nodes are messages and jobs, edges are causation."""
        events = await self.log.query(EventQuery(correlationid=correlationid, limit=limit))
        jobs = await self.log.jobs(correlationid=correlationid, limit=limit)
        job_ids = {j.id for j in jobs}
        ids = {e.id for e in events}
        # lifecycle events (job.started, job.progressed, ...) hang off their job node, and
        # messages a job emitted are "produced" by the job rather than by job.started
        lifecycle = {
            e.id: e.data.get("job_id")
            for e in events
            if e.type.startswith("job.")
            and e.type != "job.requested"
            and e.data.get("job_id") in job_ids
        }
        nodes: list[dict[str, Any]] = []
        edges: list[dict[str, Any]] = []
        for e in events:
            nodes.append(
                {
                    "id": e.id,
                    "kind": "message",
                    "type": e.type,
                    "subject": e.subject,
                    "source": e.source,
                    "time": e.time.isoformat(),
                    "seq": e.seq,
                    "data": e.data,
                }
            )
            if e.id in lifecycle:
                edges.append({"from": f"job:{lifecycle[e.id]}", "to": e.id, "kind": "reported"})
            elif e.causationid in lifecycle:
                edges.append(
                    {"from": f"job:{lifecycle[e.causationid]}", "to": e.id, "kind": "produced"}
                )
            elif e.causationid and e.causationid in ids:
                edges.append({"from": e.causationid, "to": e.id, "kind": "caused"})
        for j in jobs:
            nodes.append(
                {
                    "id": f"job:{j.id}",
                    "kind": "job",
                    "type": j.name,
                    "status": j.status,
                    "attempt": j.attempt,
                    "executor": j.executor,
                    "time": j.created_at.isoformat(),
                    "progress": j.progress,
                }
            )
            if j.requested_event in ids:
                edges.append({"from": j.requested_event, "to": f"job:{j.id}", "kind": "requested"})
        return {"correlationid": correlationid, "nodes": nodes, "edges": edges}
