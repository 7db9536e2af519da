"""The kubernetes executor: manifests validated against the Kubernetes schema, client calls
against a recorded API contract (a fake BatchV1Api/CoreV1Api), and the pod entry point run for
real so the log lines the fake replays are the ones a pod prints."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from herald.bus.base import JobRecord
from herald.jobs.executors.base import JobFailure
from herald.jobs.executors.kubernetes import (
    MARKER,
    SPEC_ENV,
    KubernetesExecutor,
    job_name,
    render_job,
)
from herald.jobs.registry import JobDefinition, JobRegistry, job
from herald.settings import KubernetesSettings

kv = importlib.import_module("kubernetes_validate")
ApiException = importlib.import_module("kubernetes.client").ApiException

K8S_VERSION = "1.30.0"  # a schema kubernetes-validate ships; the chart targets >= 1.28

PLUGIN = """
import herald

@herald.job(executor="kubernetes")
def add(a: int, b: int, ctx: herald.JobContext) -> dict:
    print("adding", a, b, flush=True)
    ctx.progress(0.5, "half way")
    return {"sum": a + b}

@herald.job(executor="kubernetes")
def boom(n: int) -> None:
    raise ValueError(f"bad n {n}")
"""


def record(name: str = "add", attempt: int = 1, timeout_s: float | None = None) -> JobRecord:
    now = datetime.now(UTC)
    return JobRecord(
        id=uuid.uuid4().hex,
        name=name,
        params={"a": 2, "b": 3} if name == "add" else {"n": 1},
        executor="kubernetes",
        status="running",
        attempt=attempt,
        max_attempts=3,
        created_at=now,
        updated_at=now,
        correlationid=uuid.uuid4().hex,
        causationid=None,
        timeout_s=timeout_s,
    )


def definition() -> JobDefinition:
    reg = JobRegistry()

    @job("add", registry=reg)
    def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    return reg.get("add")


def settings(**kw: Any) -> KubernetesSettings:
    base: dict[str, Any] = {
        "enabled": True,
        "namespace": "ml",
        "image": "ghcr.io/acme/herald:1.0",
        "service_account": "herald-jobs",
        "env_secret": "herald-env",
        "gpus": 1,
        "node_selector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "poll_s": 0.01,
    }
    return KubernetesSettings(**{**base, **kw})


# manifests ------------------------------------------------------------------------------------
def test_rendered_job_validates_against_the_kubernetes_schema() -> None:
    rec = record(timeout_s=600)
    body = render_job(rec, settings(), ["/app/plugins/jobs.py"])
    kv.validate(body, K8S_VERSION, strict=True)
    spec = body["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == 3600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "herald-jobs"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    [c] = pod["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["envFrom"] == [{"secretRef": {"name": "herald-env"}}]
    sent = json.loads(next(e["value"] for e in c["env"] if e["name"] == SPEC_ENV))
    assert sent["job_id"] == rec.id and sent["params"] == {"a": 2, "b": 3}


def test_job_names_are_deterministic_valid_labels() -> None:
    jid = uuid.uuid4().hex
    a = job_name(jid, "Fine_Tune LoRA!! with a very long name indeed", 1)
    assert a == job_name(jid, "Fine_Tune LoRA!! with a very long name indeed", 1)
    assert a != job_name(jid, "Fine_Tune LoRA!! with a very long name indeed", 2)
    assert len(a) <= 63 and a.startswith("herald-fine-tune-lora")
    body = render_job(record(), settings(gpus=0, tolerations=[], node_selector={}), [])
    kv.validate(body, K8S_VERSION, strict=True)
    assert (
        "nvidia.com/gpu"
        not in body["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    )


def test_a_bad_manifest_is_caught_by_the_validator() -> None:
    body = render_job(record(), settings(), [])
    body["spec"]["backoffLimit"] = "zero"
    with pytest.raises(kv.ValidationError):
        kv.validate(body, K8S_VERSION, strict=True)


# the pod entry point, for real ----------------------------------------------------------------
def run_pod(tmp_path: Path, rec: JobRecord) -> list[str]:
    plugin = tmp_path / "jobs_plugin.py"
    plugin.write_text(PLUGIN)
    body = render_job(rec, settings(), [str(plugin)])
    [c] = body["spec"]["template"]["spec"]["containers"]
    env = {**os.environ, **{e["name"]: e["value"] for e in c["env"]}, "HERALD_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "herald.jobs.executors.kubernetes"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return (out.stdout + out.stderr).splitlines()


# the recorded API contract --------------------------------------------------------------------
class FakeStream:
    def __init__(self, lines: list[str]) -> None:
        self.data = ("\n".join(lines) + "\n").encode()
        self.released = False

    def stream(self, decode_content: bool = True) -> Any:
        for i in range(0, len(self.data), 7):  # odd chunk sizes split lines
            yield self.data[i : i + 7]

    def release_conn(self) -> None:
        self.released = True


class FakeCluster:
    """BatchV1Api + CoreV1Api double: records calls, answers like the API server does."""

    def __init__(self, pod_log: list[str], final: str = "Complete", exists: bool = False) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pod_log = pod_log
        self.final = final
        self.exists = exists
        self.status_reads = 0

    # BatchV1Api
    def create_namespaced_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("create_namespaced_job", (namespace,), {"body": body}))
        name = body["metadata"]["name"]
        if self.exists or name in self.jobs:
            raise ApiException(status=409, reason="AlreadyExists")
        self.jobs[name] = body
        return body

    def read_namespaced_job_status(self, name: str, namespace: str) -> dict[str, Any]:
        self.calls.append(("read_namespaced_job_status", (name, namespace), {}))
        self.status_reads += 1
        if self.status_reads < 2:
            return {"status": {"active": 1}}
        cond = {"type": self.final, "status": "True"}
        if self.final == "Failed":
            cond.update(reason="DeadlineExceeded", message="Job was active longer than allowed")
        return {"status": {"conditions": [cond]}}

    def list_namespaced_job(self, namespace: str, label_selector: str) -> dict[str, Any]:
        self.calls.append(("list_namespaced_job", (namespace,), {"label_selector": label_selector}))
        return {
            "items": [
                {"metadata": {"name": "old-a1", "labels": {"herald.dev/attempt": "1"}}},
                {"metadata": {"name": "cur-a2", "labels": {"herald.dev/attempt": "2"}}},
            ]
        }

    def delete_namespaced_job(self, name: str, namespace: str, **kw: Any) -> None:
        self.calls.append(("delete_namespaced_job", (name, namespace), kw))

    # CoreV1Api
    def list_namespaced_pod(self, namespace: str, label_selector: str) -> dict[str, Any]:
        self.calls.append(("list_namespaced_pod", (namespace,), {"label_selector": label_selector}))
        job = label_selector.split("=", 1)[1]
        phase = "Failed" if self.final == "Failed" and not self.pod_log else "Running"
        return {"items": [{"metadata": {"name": f"{job}-x7k2p"}, "status": {"phase": phase}}]}

    def read_namespaced_pod_log(self, name: str, namespace: str, **kw: Any) -> FakeStream:
        self.calls.append(("read_namespaced_pod_log", (name, namespace), kw))
        return FakeStream(self.pod_log)


def executor(cluster: FakeCluster, **kw: Any) -> KubernetesExecutor:
    return KubernetesExecutor(settings(**kw), ["/app/jobs.py"], batch_api=cluster, core_api=cluster)


@pytest.mark.slow
async def test_a_job_runs_through_the_pod_entry_point_and_the_recorded_api(
    tmp_path: Path,
) -> None:
    rec = record()
    pod_log = await asyncio.to_thread(run_pod, tmp_path, rec)
    assert any(line.startswith(MARKER) for line in pod_log), pod_log
    cluster = FakeCluster(pod_log)
    seen: list[dict[str, Any]] = []
    result = await executor(cluster).run(rec, definition(), seen.append)
    assert result["value"] == {"sum": 5}
    assert {"kind": "log", "stream": "stdout", "line": "adding 2 3"} in seen
    assert any(i.get("kind") == "progress" for i in seen), seen
    name = job_name(rec.id, "add", 1)
    methods = [c[0] for c in cluster.calls]
    assert methods[0] == "create_namespaced_job"
    assert ("list_namespaced_pod", ("ml",), {"label_selector": f"job-name={name}"}) in cluster.calls
    log_call = next(c for c in cluster.calls if c[0] == "read_namespaced_pod_log")
    assert log_call[1] == (f"{name}-x7k2p", "ml")
    assert log_call[2] == {"follow": True, "_preload_content": False}
    assert methods[-1] == "read_namespaced_job_status"

    failing = record("boom")
    cluster = FakeCluster(await asyncio.to_thread(run_pod, tmp_path, failing), final="Failed")
    with pytest.raises(JobFailure, match="ValueError: bad n 1"):
        await executor(cluster).run(failing, definition(), seen.append)


async def test_resubmitting_an_attempt_adopts_the_existing_job() -> None:
    rec = record()
    done = MARKER + json.dumps({"kind": "result", "messages": [], "value": 7})
    cluster = FakeCluster(["hello", done], exists=True)
    result = await executor(cluster).run(rec, definition(), lambda item: None)
    assert result == {"messages": [], "value": 7}
    assert [c[0] for c in cluster.calls].count("create_namespaced_job") == 1


async def test_a_later_attempt_deletes_the_jobs_of_earlier_attempts() -> None:
    rec = record(attempt=2)
    done = MARKER + json.dumps({"kind": "result", "messages": [], "value": None})
    cluster = FakeCluster([done])
    await executor(cluster).run(rec, definition(), lambda item: None)
    deletes = [c for c in cluster.calls if c[0] == "delete_namespaced_job"]
    assert deletes == [
        ("delete_namespaced_job", ("old-a1", "ml"), {"propagation_policy": "Background"})
    ]


async def test_a_job_that_fails_without_a_result_reports_the_job_condition() -> None:
    cluster = FakeCluster([], final="Failed")
    with pytest.raises(JobFailure, match="DeadlineExceeded"):
        await executor(cluster).run(record(), definition(), lambda item: None)


async def test_forbidden_is_not_retried_and_names_the_fix() -> None:
    class Forbidden(FakeCluster):
        def create_namespaced_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            raise ApiException(status=403, reason="Forbidden")

    with pytest.raises(JobFailure, match="herald-jobs Role") as info:
        await executor(Forbidden([])).run(record(), definition(), lambda item: None)
    assert info.value.retryable is False


async def test_cancelling_deletes_the_job() -> None:
    class Pending(FakeCluster):
        def list_namespaced_pod(self, namespace: str, label_selector: str) -> dict[str, Any]:
            return {"items": [{"metadata": {"name": "p"}, "status": {"phase": "Pending"}}]}

        def read_namespaced_job_status(self, name: str, namespace: str) -> dict[str, Any]:
            return {"status": {"active": 1}}

    cluster = Pending([])
    rec = record()
    task = asyncio.create_task(executor(cluster).run(rec, definition(), lambda item: None))
    while not any(c[0] == "create_namespaced_job" for c in cluster.calls):
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (
        "delete_namespaced_job",
        (job_name(rec.id, "add", 1), "ml"),
        {"propagation_policy": "Background"},
    ) in cluster.calls
