"""``kubernetes``: each job attempt as one ``batch/v1`` Job on a cluster.

The Job's name is derived from the job id and attempt, so resubmitting an attempt (a worker
restarted mid-submit) adopts the existing Job instead of starting a second one (HTTP 409).
The pod runs ``python -m herald.jobs.executors.kubernetes``: it reads the job spec from the
``HERALD_JOB_SPEC`` environment variable, runs ``python -m herald.jobprocess`` exactly as the
``local`` executor does, and prints the child's channel (progress, live messages, result) on
stdout as lines prefixed with :data:`MARKER`. The executor follows the pod log through the
official ``kubernetes`` client, turns marker lines into progress/results and every other line
into the job's log, and reads the Job status for failures the pod cannot report (unschedulable,
deadline exceeded, OOM-killed). Cancelling deletes the Job (and its pods).

``pip install "herald[kubernetes]"``; the client is imported only when the executor is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

from herald.bus.base import JobRecord
from herald.errors import BackendUnavailable, ConfigurationError
from herald.jobs.executors.base import Executor, JobFailure, Sink
from herald.jobs.registry import JobDefinition
from herald.settings import KubernetesSettings

log = logging.getLogger(__name__)

MARKER = "@@herald-channel@@ "
SPEC_ENV = "HERALD_JOB_SPEC"
LABEL_JOB = "herald.dev/job-id"
LABEL_ATTEMPT = "herald.dev/attempt"
_DNS = re.compile(r"[^a-z0-9-]+")


def job_name(job_id: str, name: str, attempt: int) -> str:
    """A valid DNS-1123 label (≤ 63 chars), the same for the same job id and attempt."""
    slug = _DNS.sub("-", name.lower()).strip("-")[:30].strip("-") or "job"
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:10]
    return f"herald-{slug}-{digest}-a{attempt}"


def job_label(job_id: str) -> str:
    """Label values are ≤ 63 chars of [A-Za-z0-9-_.]: the job id's hash."""
    return hashlib.sha256(job_id.encode()).hexdigest()[:40]


def render_job(
    job: JobRecord, settings: KubernetesSettings, plugins: list[str], origin: str | None = None
) -> dict[str, Any]:
    """The ``batch/v1`` Job manifest of one attempt (a plain dict, camelCase as in YAML)."""
    spec = {
        "job_id": job.id,
        "name": job.name,
        "attempt": job.attempt,
        "params": job.params,
        "plugins": plugins,
        "origin": origin,
    }
    resources: dict[str, str] = {"cpu": settings.cpu, "memory": settings.memory}
    if settings.gpus:
        resources["nvidia.com/gpu"] = str(settings.gpus)
    container: dict[str, Any] = {
        "name": "job",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["python", "-m", "herald.jobs.executors.kubernetes"],
        "env": [
            {"name": SPEC_ENV, "value": json.dumps(spec, default=str)},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if settings.env_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.env_secret}}]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    if settings.node_selector:
        pod["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        pod["tolerations"] = [dict(t) for t in settings.tolerations]
    labels = {
        "app.kubernetes.io/name": "herald",
        "app.kubernetes.io/component": "job",
        LABEL_JOB: job_label(job.id),
        LABEL_ATTEMPT: str(job.attempt),
    }
    body: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(job.id, job.name, job.attempt),
            "namespace": settings.namespace,
            "labels": labels,
            "annotations": {"herald.dev/job-id": job.id, "herald.dev/job-name": job.name},
        },
        "spec": {
            "backoffLimit": settings.backoff_limit,
            "ttlSecondsAfterFinished": settings.ttl_after_finished_s,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }
    deadline = int(job.timeout_s) if job.timeout_s else settings.active_deadline_s
    if deadline:
        body["spec"]["activeDeadlineSeconds"] = max(int(deadline), 1)
    return body


def load_clients() -> tuple[Any, Any]:
    """(BatchV1Api, CoreV1Api) from the in-cluster service account, else ~/.kube/config."""
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise BackendUnavailable(
            'the kubernetes executor needs the kubernetes client: pip install "herald[kubernetes]"'
        ) from exc
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as exc:
            raise ConfigurationError(
                "the kubernetes executor found no cluster credentials: run the worker in a pod "
                f"with a service account, or set KUBECONFIG ({exc})"
            ) from exc
    return client.BatchV1Api(), client.CoreV1Api()


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _get(obj: Any, *path: str) -> Any:
    """Read a field from a client model object or a plain dict (snake_case path)."""
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
    return obj


class KubernetesExecutor(Executor):
    name = "kubernetes"

    def __init__(
        self,
        settings: KubernetesSettings,
        plugins: list[str] | None = None,
        *,
        batch_api: Any = None,
        core_api: Any = None,
    ) -> None:
        self.settings = settings
        self.capacity = settings.capacity
        self.plugins = list(plugins or [])
        if batch_api is None or core_api is None:
            batch_api, core_api = load_clients()
        self.batch = batch_api
        self.core = core_api

    async def run(self, job: JobRecord, definition: JobDefinition, sink: Sink) -> dict[str, Any]:
        body = render_job(job, self.settings, self.plugins, definition.origin)
        name = body["metadata"]["name"]
        ns = self.settings.namespace
        await self._cleanup_older_attempts(job)
        await self._submit(body)
        outcome: dict[str, Any] = {}
        tail: deque[str] = deque(maxlen=20)
        try:
            pod = await self._wait_for_pod(name)
            if pod is not None:
                await self._follow(pod, sink, outcome, tail)
            failed = await self._wait_finished(name)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    self.batch.delete_namespaced_job,
                    name,
                    ns,
                    propagation_policy="Background",
                )
            raise
        if outcome.get("kind") == "result" and failed is None:
            return {"messages": outcome.get("messages", []), "value": outcome.get("value")}
        if outcome.get("kind") == "error":
            raise JobFailure(
                outcome.get("error") or "job failed",
                retryable=bool(outcome.get("retryable", True)),
            )
        reason = f"Kubernetes Job {ns}/{name} failed: {failed or 'no result from the pod'}"
        if tail:
            reason += f"; last log line: {tail[-1]}"
        raise JobFailure(reason)

    # cluster calls --------------------------------------------------------------------------
    async def _submit(self, body: dict[str, Any]) -> None:
        ns, name = self.settings.namespace, body["metadata"]["name"]
        try:
            await asyncio.to_thread(self.batch.create_namespaced_job, ns, body)
        except Exception as exc:
            if _status(exc) == 409:  # this attempt was submitted before: adopt it
                log.info("adopting existing Kubernetes Job %s/%s", ns, name)
                return
            if _status(exc) in (401, 403):
                raise JobFailure(
                    f"not allowed to create Jobs in namespace {ns!r}: give the worker's service "
                    f"account the herald-jobs Role ({_status(exc)})",
                    retryable=False,
                ) from exc
            raise JobFailure(f"cannot create Kubernetes Job {ns}/{name}: {exc}") from exc

    async def _cleanup_older_attempts(self, job: JobRecord) -> None:
        """Delete Jobs of earlier attempts of this job (a worker died while they ran)."""
        if job.attempt <= 1:
            return
        ns = self.settings.namespace
        try:
            jobs = await asyncio.to_thread(
                self.batch.list_namespaced_job,
                ns,
                label_selector=f"{LABEL_JOB}={job_label(job.id)}",
            )
        except Exception as exc:
            log.warning("cannot list earlier attempts of job %s: %s", job.id, exc)
            return
        for item in _get(jobs, "items") or []:
            labels = _get(item, "metadata", "labels") or {}
            if labels.get(LABEL_ATTEMPT) != str(job.attempt):
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(
                        self.batch.delete_namespaced_job,
                        _get(item, "metadata", "name"),
                        ns,
                        propagation_policy="Background",
                    )

    def _failure(self, job_obj: Any) -> str | None:
        for cond in _get(job_obj, "status", "conditions") or []:
            if _get(cond, "type") == "Failed" and _get(cond, "status") == "True":
                return f"{_get(cond, 'reason') or 'Failed'}: {_get(cond, 'message') or ''}".strip()
        return None

    def _complete(self, job_obj: Any) -> bool:
        return any(
            _get(c, "type") in ("Complete", "SuccessCriteriaMet") and _get(c, "status") == "True"
            for c in _get(job_obj, "status", "conditions") or []
        )

    async def _wait_for_pod(self, name: str) -> str | None:
        """The pod's name once it runs or ended; ``None`` if the Job failed without one."""
        ns = self.settings.namespace
        while True:
            pods = await asyncio.to_thread(
                self.core.list_namespaced_pod, ns, label_selector=f"job-name={name}"
            )
            for pod in _get(pods, "items") or []:
                if _get(pod, "status", "phase") in ("Running", "Succeeded", "Failed"):
                    return str(_get(pod, "metadata", "name"))
            job_obj = await asyncio.to_thread(self.batch.read_namespaced_job_status, name, ns)
            if self._failure(job_obj) is not None:
                return None
            await asyncio.sleep(self.settings.poll_s)

    async def _wait_finished(self, name: str) -> str | None:
        """``None`` when the Job completed, else the reason it failed."""
        ns = self.settings.namespace
        while True:
            job_obj = await asyncio.to_thread(self.batch.read_namespaced_job_status, name, ns)
            failed = self._failure(job_obj)
            if failed is not None or self._complete(job_obj):
                return failed
            await asyncio.sleep(self.settings.poll_s)

    async def _follow(
        self, pod: str, sink: Sink, outcome: dict[str, Any], tail: deque[str]
    ) -> None:
        """Stream the pod's log (a thread reads the client's stream) into the job's log."""
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        stop = threading.Event()

        def reader() -> None:
            try:
                resp = self.core.read_namespaced_pod_log(
                    pod, self.settings.namespace, follow=True, _preload_content=False
                )
                try:
                    for line in _iter_lines(resp.stream(decode_content=True)):
                        if stop.is_set():
                            break
                        loop.call_soon_threadsafe(lines.put_nowait, line)
                finally:
                    with contextlib.suppress(Exception):
                        resp.release_conn()
            except Exception as exc:
                loop.call_soon_threadsafe(lines.put_nowait, f"[herald] log stream ended: {exc}")
            finally:
                loop.call_soon_threadsafe(lines.put_nowait, None)

        thread = threading.Thread(target=reader, name=f"k8s-log:{pod}", daemon=True)
        thread.start()
        try:
            while (line := await lines.get()) is not None:
                if line.startswith(MARKER):
                    try:
                        item = json.loads(line[len(MARKER) :])
                    except ValueError:
                        continue
                    if item.get("kind") in ("result", "error"):
                        outcome.update(item)
                    else:
                        sink(item)
                else:
                    tail.append(line)
                    sink({"kind": "log", "stream": "stdout", "line": line})
        finally:
            stop.set()


def _iter_lines(chunks: Any) -> Iterator[str]:
    buf = b""
    for chunk in chunks:
        buf += chunk if isinstance(chunk, bytes) else str(chunk).encode()
        *complete, buf = buf.split(b"\n")
        for raw in complete:
            yield raw.decode(errors="replace").rstrip("\r")
    if buf:
        yield buf.decode(errors="replace")


# the pod side ---------------------------------------------------------------------------------
def pod_main() -> int:
    """Run the job in ``$HERALD_JOB_SPEC`` through ``herald.jobprocess``; print its channel."""
    from herald.jobs.executors.local import CHANNEL_ENV

    spec = os.environ.get(SPEC_ENV)
    if not spec:
        print(
            f"{SPEC_ENV} is not set: this entry point runs inside a Herald job pod", file=sys.stderr
        )
        return 2
    read_fd, write_fd = os.pipe()
    env = {k: v for k, v in os.environ.items() if k != SPEC_ENV}
    env[CHANNEL_ENV] = str(write_fd)
    proc = subprocess.Popen(
        [sys.executable, "-m", "herald.jobprocess"],
        stdin=subprocess.PIPE,
        pass_fds=(write_fd,),
        env=env,
    )
    os.close(write_fd)
    assert proc.stdin is not None
    proc.stdin.write(spec.encode())
    proc.stdin.close()
    with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace") as channel:
        for line in channel:
            sys.stdout.write(MARKER + line.rstrip("\n") + "\n")
            sys.stdout.flush()
    return proc.wait()


if __name__ == "__main__":
    sys.exit(pod_main())
