"""The services a sensor or job reaches other capabilities through.

The composition root (:class:`herald.bootstrap.Herald`) builds one :class:`Services`; the sensor
runner hands it to every handler as ``ctx.services`` and the ``inline`` executor to every job as
``ctx.services``. A job in its own process (``local``, ``ray``, ``kubernetes``) gets one built
from that process's settings on first use. So a sensor or job reads the settings and the
registry of the Herald that runs it — ``herald.yaml`` and programmatic ``Settings`` included —
instead of a process global or the environment alone.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from herald.errors import ConfigurationError

if TYPE_CHECKING:
    from herald.artifacts.base import ArtifactStore
    from herald.bus.base import EventLog
    from herald.evaluation.store import EvaluationStore
    from herald.jobs.context import JobContext
    from herald.monitoring.store import MonitoringStore
    from herald.prompts.store import PromptStore
    from herald.rag.service import RagService
    from herald.registry import Registry
    from herald.sensors.base import SensorContext
    from herald.serving.deployments import DeploymentManager, DeploymentStore
    from herald.serving.requestlog import DatabaseRequestLog, FileRequestLog
    from herald.settings import Settings

__all__ = ["Services"]


class Services:
    """Settings plus the stores built from them; a store is opened on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry | None = None,
        artifacts: ArtifactStore | None = None,
        event_log: EventLog | None = None,
        evaluations: EvaluationStore | None = None,
        prompts: PromptStore | None = None,
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._artifacts = artifacts
        self._event_log = event_log
        self._evaluations = evaluations
        self._prompts = prompts
        # close() closes these two only when they were opened here (else they are the caller's)
        self._own_evaluations, self._own_prompts = evaluations is None, prompts is None
        self._lock = threading.Lock()
        # the deployment manager of a process that serves or controls deployments (set by the
        # composition root); None in a job process, which reads the deployment store alone
        self.deployments: DeploymentManager | None = None
        self._deployment_store: DeploymentStore | None = None
        self._monitoring: MonitoringStore | None = None
        self._rag: RagService | None = None
        self._request_log: FileRequestLog | DatabaseRequestLog | None = None

    @classmethod
    def from_environment(cls) -> Services:
        """The services of a job process: its settings (environment and ``herald.yaml``)."""
        from herald.settings import load_settings  # the settings tree imports every capability

        return cls(load_settings())

    @classmethod
    def of_job(cls, ctx: JobContext | None) -> Services:
        """A job's services: its context's, else (a job function called directly, or with a
        context made without services) those of this process's environment."""
        return ctx.services if ctx is not None and ctx.has_services else cls.from_environment()

    @classmethod
    def of_sensor(cls, ctx: SensorContext) -> Services:
        """A sensor context's ``services``; a hand-made context without them is an error."""
        if ctx.services is None:
            raise ConfigurationError(
                f"sensor {ctx.sensor} needs the running Herald's services: the sensor runner "
                "passes them; a hand-made SensorContext must set services=Services(settings, …)"
            )
        return ctx.services

    @property
    def registry(self) -> Registry:
        with self._lock:
            if self._registry is None:
                from herald.registry import Registry  # opened lazily: most jobs never need it

                self._registry = Registry.from_settings(self.settings)
            return self._registry

    @property
    def artifacts(self) -> ArtifactStore:
        with self._lock:
            if self._artifacts is None:
                from herald.artifacts.registry import open_artifact_store

                self._artifacts = open_artifact_store(
                    self.settings.resolved_artifacts_url,
                    cache_dir=self.settings.home / "cache" / "artifacts",
                )
            return self._artifacts

    @property
    def evaluations(self) -> EvaluationStore:
        """The evaluation results every role shares (the PostgreSQL database, else the home's
        SQLite file)."""
        with self._lock:
            if self._evaluations is None:
                from herald.evaluation.store import EvaluationStore

                self._evaluations = EvaluationStore.from_settings(self.settings)
            return self._evaluations

    @property
    def prompts(self) -> PromptStore:
        """The prompt registry every role shares (as :attr:`evaluations`)."""
        with self._lock:
            if self._prompts is None:
                from herald.prompts.store import PromptStore

                self._prompts = PromptStore.from_settings(self.settings)
            return self._prompts

    @property
    def event_log(self) -> EventLog:
        if self._event_log is None:
            raise ConfigurationError(
                "no event log in this process: a job publishes through ctx.emit / ctx.progress"
            )
        return self._event_log

    @property
    def deployment_store(self) -> DeploymentStore:
        """The deployment manager's store, else (a job process) one opened on first use."""
        if self.deployments is not None:
            return self.deployments.store
        with self._lock:
            if self._deployment_store is None:
                from herald.serving.deployments.store import DeploymentStore

                self._deployment_store = DeploymentStore.from_settings(self.settings)
            return self._deployment_store

    @property
    def monitoring(self) -> MonitoringStore:
        """The monitoring state (feedback, rule cooldowns, retraining runs and plans)."""
        with self._lock:
            if self._monitoring is None:
                from herald.monitoring.store import MonitoringStore

                self._monitoring = MonitoringStore.from_settings(self.settings)
            return self._monitoring

    @property
    def rag(self) -> RagService:
        """The RAG service (collections, ingestion, retrieval) of these settings."""
        with self._lock:
            if self._rag is None:
                from herald.rag.service import RagService

                self._rag = RagService.from_settings(self.settings)
            return self._rag

    @property
    def request_log(self) -> FileRequestLog | DatabaseRequestLog:
        """A reader of the request log the serving processes write (kept open)."""
        with self._lock:
            if self._request_log is None:
                from herald.serving.requestlog import open_request_log

                self._request_log = open_request_log(self.settings)
            return self._request_log

    def close(self) -> None:
        """Close the stores opened here on first use (those handed in belong to the caller)."""
        with self._lock:
            opened = (self._deployment_store, self._monitoring, self._rag, self._request_log)
            self._deployment_store = self._monitoring = self._rag = self._request_log = None
            # the result and prompt stores stay: a closed store reopens on next use
            kept = (
                self._evaluations if self._own_evaluations else None,
                self._prompts if self._own_prompts else None,
            )
        for store in (*opened, *kept):
            if store is not None:
                store.close()
