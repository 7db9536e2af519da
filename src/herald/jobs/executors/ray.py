"""``ray``: each job attempt as one Ray task on a cluster, with resource requests.

The executor joins the cluster named by ``jobs.ray.address`` (``host:port`` of the head's GCS,
``ray://host:10001``, ``auto`` or ``local``) the first time it runs a job. A job attempt
becomes one Ray task (a streaming generator) that requests the job's resources: ``num_cpus``,
``num_gpus`` and ``memory`` from ``jobs.ray.job_resources[<job>]``, else the job's own
``@job(resources=...)``, else the ``jobs.ray`` defaults. Inside the task the job runs exactly
as under the ``local`` executor — ``python -m herald.jobprocess`` in a subprocess of the Ray
worker — and the task yields its log lines and its channel (progress, live messages, the
result) back to the Herald worker as they happen; the Herald worker keeps heartbeating the
job's lease meanwhile, as for any executor.

Cancelling the awaiting coroutine cancels the Ray task: the task stops the job process
(SIGTERM, then SIGKILL after ``cancel_grace_s``), and if it has not ended a little later the Ray
worker itself is killed (``force=True``). Ray never retries the task (``max_retries=0``): a
crashed Ray worker or a lost node is a failed attempt that Herald retries by its own policy.

``pip install "herald[ray]"``; ``ray`` is imported only when the executor first connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from typing import IO, Any

from herald.bus.base import JobRecord
from herald.errors import BackendUnavailable, ConfigurationError
from herald.jobs.executors.base import Executor, JobFailure, Sink
from herald.jobs.registry import JobDefinition
from herald.raycluster import connect  # shared with distributed training, sharded eval
from herald.settings import RaySettings, Settings

log = logging.getLogger(__name__)

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
# the job's environment never carries the admin key to the cluster
_NOT_FORWARDED = ("HERALD_API_KEY",)


def parse_memory(value: Any, *, field: str = "memory") -> int | None:
    """Bytes from ``1073741824``, ``"512MiB"``, ``"2GiB"``, ``"2Gi"`` or ``"1.5GB"``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConfigurationError(f"{field}: expected bytes or a size like 2GiB, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigurationError(f"{field}: must not be negative, got {value!r}")
        return int(value)
    m = _MEMORY.match(str(value))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise ConfigurationError(
            f"{field}: cannot read {value!r} as a size; use bytes or a number with one of "
            "KiB, MiB, GiB, TiB (or KB, MB, GB, TB, Ki, Mi, Gi)"
        )
    return int(float(m.group(1)) * _UNITS[unit])


def resource_request(
    job_name: str, definition: JobDefinition | None, settings: RaySettings
) -> dict[str, Any]:
    """Ray task options ``{num_cpus, num_gpus, memory?}`` for one attempt of ``job_name``."""
    merged: dict[str, Any] = {
        "cpus": settings.num_cpus,
        "gpus": settings.num_gpus,
        "memory": settings.memory,
    }
    for layer, where in (
        (definition.resources if definition is not None else None, f"job {job_name!r}"),
        (settings.job_resources.get(job_name), f"jobs.ray.job_resources.{job_name}"),
    ):
        if not layer:
            continue
        unknown = set(layer) - {"cpus", "gpus", "memory"}
        if unknown:
            raise ConfigurationError(
                f"{where}: unknown resource(s) {', '.join(sorted(unknown))}; "
                "use cpus, gpus and memory"
            )
        merged.update({k: v for k, v in layer.items() if v is not None})
    out: dict[str, Any] = {}
    for key, opt in (("cpus", "num_cpus"), ("gpus", "num_gpus")):
        try:
            number = float(merged[key])
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"job {job_name!r}: {key} must be a number, got {merged[key]!r}"
            ) from None
        if number < 0:
            raise ConfigurationError(f"job {job_name!r}: {key} must not be negative")
        out[opt] = number
    memory = parse_memory(merged["memory"], field=f"job {job_name!r} memory")
    if memory:
        out["memory"] = memory
    return out


def job_environment(settings: Settings, *, forward: bool = True) -> dict[str, str]:
    """Variables a job process on the cluster needs to find this Herald (home, database,
    artifacts) plus, when ``forward``, this process's other ``HERALD_*`` variables."""
    env: dict[str, str] = {}
    if forward:
        env.update(
            {
                k: v
                for k, v in os.environ.items()
                if k.startswith("HERALD_") and k not in _NOT_FORWARDED
            }
        )
    env["HERALD_HOME"] = str(settings.home)
    env["HERALD_DATABASE_URL"] = settings.resolved_database_url
    env["HERALD_ARTIFACTS_URL"] = settings.resolved_artifacts_url
    return env


# the task side (runs in a Ray worker) -----------------------------------------------------------
def run_job_process(
    spec: dict[str, Any], env: dict[str, str], grace_s: float
) -> Iterator[dict[str, Any]]:
    """Run ``python -m herald.jobprocess`` for ``spec``; yield its logs and channel items.

    The last item is ``{"kind": "exit", "code": <exit status>}``. Stopping the generator (a
    cancelled task) stops the process: SIGTERM to its process group, SIGKILL after
    ``grace_s``.
    """
    from herald.jobs.executors.local import CHANNEL_ENV

    read_fd, write_fd = os.pipe()
    child_env = dict(os.environ)
    child_env.update(env)
    child_env[CHANNEL_ENV] = str(write_fd)
    child_env["PYTHONUNBUFFERED"] = "1"
    with contextlib.suppress(Exception):
        import ray

        # nested Ray use (distributed training, sharded evaluation) joins this cluster's GCS
        # directly, even when the Herald worker came in through the Ray Client
        child_env["HERALD_JOBS__RAY__ADDRESS"] = str(ray.get_runtime_context().gcs_address)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "herald.jobprocess"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
            env=child_env,
            start_new_session=True,
        )
    finally:
        os.close(write_fd)
    items: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def pump(stream: IO[bytes], name: str) -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                items.put({"kind": "log", "stream": name, "line": line})
        finally:
            items.put(None)

    def channel(fd: int) -> None:
        try:
            with os.fdopen(fd, "rb") as f:
                for raw in f:
                    try:
                        item = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(item, dict):
                        items.put(item)
        finally:
            items.put(None)

    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    threads = [
        threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True),
        threading.Thread(target=channel, args=(read_fd,), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        proc.stdin.write(json.dumps(spec, default=str).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    try:
        ended = 0
        while ended < len(threads):
            try:
                item = items.get(timeout=0.2)  # short waits: a cancel is delivered between them
            except queue.Empty:
                continue
            if item is None:
                ended += 1
                continue
            yield item
        yield {"kind": "exit", "code": proc.wait()}
    finally:
        _stop_process(proc, grace_s)


def _stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_job_to_queue(spec: dict[str, Any], env: dict[str, str], grace_s: float, events: Any) -> int:
    """The Ray Client variant: put the items on a queue actor; return the exit status."""
    code = 1
    for item in run_job_process(spec, env, grace_s):
        if item.get("kind") == "exit":
            code = int(item.get("code", 1))
        else:
            events.put(item)
    return code


def _drain(events: Any, wait_s: float) -> list[dict[str, Any]]:
    """Whatever the queue holds now, after waiting up to ``wait_s`` for the first item."""
    from ray.util.queue import Empty

    try:
        first = events.get(timeout=wait_s)
    except Empty:
        return []
    rest: list[dict[str, Any]] = []
    size = events.qsize()
    if size:
        rest = list(events.get_nowait_batch(size))
    return [first, *rest]


class _Attempt:
    """The items of one attempt: logs and progress go to the sink, the outcome is kept."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.tail: deque[str] = deque(maxlen=20)
        self.outcome: dict[str, Any] = {}
        self.code: int | None = None

    def take(self, item: dict[str, Any]) -> None:
        kind = item.get("kind")
        if kind == "exit":
            self.code = int(item.get("code", 1))
        elif kind in ("result", "error"):
            self.outcome.update(item)
        else:
            if kind == "log" and item.get("stream") == "stderr":
                self.tail.append(str(item.get("line", "")))
            self.sink(item)

    def result(self) -> dict[str, Any]:
        outcome, code = self.outcome, self.code
        if outcome.get("kind") == "result" and code == 0:
            return {"messages": outcome.get("messages", []), "value": outcome.get("value")}
        if outcome.get("kind") == "error":
            raise JobFailure(
                outcome.get("error") or "job failed",
                retryable=bool(outcome.get("retryable", True)),
            )
        reason = f"job process on Ray exited with code {code}"
        if code is not None and code < 0:
            reason = f"job process on Ray was killed by signal {-code}"
        if self.tail:
            reason += f": {self.tail[-1]}"
        raise JobFailure(reason)


async def _mapped(work: Any) -> None:
    """Await ``work``; Ray's errors become :class:`JobFailure` with a readable reason."""
    import ray.exceptions as rex

    try:
        await work
    except rex.TaskCancelledError:
        raise JobFailure("the Ray task was cancelled (ray.cancel or the cluster)") from None
    except (rex.WorkerCrashedError, rex.NodeDiedError, rex.OutOfMemoryError) as exc:
        raise JobFailure(f"the Ray worker running the job died: {_first_line(exc)}") from None
    except rex.RayTaskError as exc:
        raise JobFailure(f"the Ray task failed: {_first_line(exc)}") from None
    except rex.RayError as exc:
        raise JobFailure(f"Ray error while running the job: {_first_line(exc)}") from None


_REMOTE: Any = None
_REMOTE_QUEUED: Any = None


def _remote() -> Any:
    global _REMOTE
    if _REMOTE is None:
        import ray

        _REMOTE = ray.remote(max_retries=0)(run_job_process)
    return _REMOTE


def _remote_queued() -> Any:
    global _REMOTE_QUEUED
    if _REMOTE_QUEUED is None:
        import ray

        _REMOTE_QUEUED = ray.remote(max_retries=0)(run_job_to_queue)
    return _REMOTE_QUEUED


# the executor ------------------------------------------------------------------------------------
class RayExecutor(Executor):
    name = "ray"

    def __init__(
        self,
        settings: RaySettings,
        plugins: list[str] | None = None,
        *,
        env: dict[str, str] | None = None,
        cancel_grace_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.capacity = settings.capacity
        self.plugins = list(plugins or [])
        self.env = dict(env or {})
        self.cancel_grace_s = cancel_grace_s
        self.gcs_address: str | None = None
        self._connect_lock = asyncio.Lock()

    async def connect(self) -> str:
        """Join the cluster if not yet joined (raises :class:`BackendUnavailable`)."""
        async with self._connect_lock:
            if self.gcs_address is None:
                self.gcs_address = await asyncio.to_thread(connect, self.settings)
                log.info("ray executor joined the cluster at %s", self.gcs_address)
            return self.gcs_address

    async def run(self, job: JobRecord, definition: JobDefinition, sink: Sink) -> dict[str, Any]:
        try:
            await self.connect()
        except (BackendUnavailable, ConfigurationError) as exc:
            raise JobFailure(str(exc)) from None
        try:
            options = resource_request(job.name, definition, self.settings)
        except ConfigurationError as exc:
            raise JobFailure(str(exc), retryable=False) from None
        if (
            isinstance(job.params.get("distributed"), dict)
            and job.name not in self.settings.job_resources
            and not (definition.resources or {}).get("cpus")
        ):
            # a distributed fine-tune only drives its Ray Train workers, which request their
            # own CPUs: holding one more would deadlock a cluster sized for the workers
            options["num_cpus"] = 0.0
        spec = {
            "job_id": job.id,
            "name": job.name,
            "attempt": job.attempt,
            "params": job.params,
            "plugins": self.plugins,
            "origin": definition.origin,
        }
        task_options: dict[str, Any] = {
            **options,
            "name": f"herald:{job.name}:{job.id[:12]}:a{job.attempt}",
        }
        if self.settings.runtime_env:
            task_options["runtime_env"] = dict(self.settings.runtime_env)
        client_mode = self.settings.address.startswith("ray://")
        sink(
            {
                "kind": "log",
                "stream": "herald",
                "line": f"submitted to Ray at {self.gcs_address} requesting "
                + ", ".join(f"{k}={v}" for k, v in options.items())
                + (" (Ray Client)" if client_mode else ""),
            }
        )
        attempt = _Attempt(sink)
        if client_mode:
            await self._run_client(attempt, spec, task_options)
        else:
            gen = _remote().options(**task_options).remote(spec, self.env, self.cancel_grace_s)
            try:
                await _mapped(self._consume(gen, attempt))
            except asyncio.CancelledError:
                await self._cancel(gen, self._consume(gen, attempt))
                raise
            finally:
                # a traceback keeps this frame alive: release the stream when the attempt ends,
                # not at some later collection that may race ray.shutdown() (see close)
                del gen
        return attempt.result()

    async def _consume(self, gen: Any, attempt: _Attempt) -> None:
        """Read the streaming generator's items as they come."""
        ref = None
        try:
            async for ref in gen:
                attempt.take(await ref)
        finally:
            del gen, ref  # (see run)

    async def _run_client(
        self, attempt: _Attempt, spec: dict[str, Any], task_options: dict[str, Any]
    ) -> None:
        """Ray Client has no streaming generators: items travel through a queue actor."""
        import ray
        from ray.util.queue import Queue

        events = Queue(actor_options={"num_cpus": 0})
        ref = (
            _remote_queued()
            .options(**task_options)
            .remote(spec, self.env, self.cancel_grace_s, events)
        )
        finished = asyncio.ensure_future(asyncio.to_thread(ray.get, ref))

        async def pump() -> None:
            while True:
                items = await asyncio.to_thread(_drain, events, 0.3)
                for item in items:
                    attempt.take(item)
                if finished.done() and not items:
                    attempt.take({"kind": "exit", "code": finished.result()})
                    return

        try:
            await _mapped(pump())
        except asyncio.CancelledError:
            await self._cancel(ref, pump())
            raise
        finally:
            finished.cancel()
            with contextlib.suppress(Exception):
                actor: Any = events.actor
                ray.kill(actor)

    async def _cancel(self, task: Any, drain: Any) -> None:
        """Cancel the task; let it stop the job process; kill its worker if it lingers."""
        import ray

        with contextlib.suppress(Exception):
            ray.cancel(task)
        try:
            await asyncio.wait_for(_mapped(drain), self.cancel_grace_s + 5.0)
        except (TimeoutError, asyncio.CancelledError, JobFailure):
            pass
        except Exception as exc:  # never mask the cancellation
            log.debug("while cancelling a Ray task: %s", exc)
        with contextlib.suppress(Exception):
            ray.cancel(task, force=True)

    async def close(self) -> None:
        """Leave the cluster (the cluster itself keeps running)."""
        if self.gcs_address is None:
            return
        import ray

        self.gcs_address = None
        if ray.is_initialized():
            # Shut down on the event loop's own thread, with nothing of Ray left to collect: an
            # object ref or stream released on this thread while ray.shutdown() runs on another
            # reaches a core worker that is gone, and Ray then ends the whole process
            # ("accesses the Ray's worker after it is shutdown. The process will exit").
            gc.collect()
            ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # RayTaskError's text is the remote traceback: its last line names the exception
    return lines[-1].strip() if lines else type(exc).__name__
