"""The ``ray`` executor against a real local Ray cluster started by the test.

One head node (``ray start --head --block``, dashboard off, its own temp dir and ports) serves
the whole module; teardown kills exactly its process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald.bus import EventQuery
from herald.jobs import default_jobs
from herald.sensors import default_registry

from .conftest import Env

pytestmark = pytest.mark.slow

PLUGIN = str(Path(__file__).with_name("jobs_plugin.py"))
RAY_PLUGIN = str(Path(__file__).with_name("ray_plugin.py"))
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A single-node Ray cluster: yields its GCS address ``127.0.0.1:<port>``."""
    tmp = Path(tempfile.mkdtemp(prefix="hray-", dir="/tmp"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "RAY_"))}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    cmd = [
        RAY,
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--ray-client-server-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        "--num-cpus=4",
        "--object-store-memory=100000000",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={tmp}",
    ]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "start.log", "wb"),  # noqa: SIM115 (closed with the process)
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp / "start.log").read_text()[-2000:]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the Ray head did not come up in 60 s"
                time.sleep(0.2)
        yield address
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                time.sleep(0.5)  # let the group's other processes exit too
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the group left behind
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
async def renv(sqlite_env: Env) -> Env:
    sqlite_env.jobs = default_jobs
    sqlite_env.sensors = default_registry
    return sqlite_env


def ray_settings(address: str, **kw: object) -> dict[str, object]:
    return {"ray": {"enabled": True, "address": address, **kw}, "cancel_grace_s": 1.0}


async def wait_job(env: Env, job_id: str, status: set[str], timeout: float = 60) -> object:
    assert env.herald is not None
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await env.herald.log.get_job(job_id)
        if job is not None and job.status in status:
            return job
        assert asyncio.get_running_loop().time() < deadline, (
            f"job {job_id} stuck in {job and job.status}: {job and job.error}"
        )
        await asyncio.sleep(0.05)


async def test_job_runs_on_the_cluster_with_logs_progress_and_messages(
    renv: Env, ray_cluster: str
) -> None:
    h = await renv.start(load=[PLUGIN, RAY_PLUGIN], jobs=ray_settings(ray_cluster))
    job = await h.submit_job("ray_test.where", {"n": 6}, executor="ray")
    done = await wait_job(renv, job.id, {"succeeded", "failed"})
    assert done.status == "succeeded", done.error  # type: ignore[attr-defined]
    result = done.result  # type: ignore[attr-defined]
    assert result["n2"] == 36
    assert result["ppid"] != os.getpid()  # a Ray worker started the job process, not we
    assert result["in_cluster"] is True
    assert result["home"] == str(h.settings.home)
    lines = [ln.line for ln in await h.log.logs(job.id)]
    assert "running 6 under Ray" in lines
    assert any("submitted to Ray" in ln and "memory=67108864" in ln for ln in lines)
    progressed = await h.log.query(EventQuery(types=["job.progressed"]))
    assert [e.data["progress"] for e in progressed] == [0.5]

    # a sensor-started job on the ray executor: the live message comes back as a message
    cause = await h.emit(h.catalog.validate("test.build.requested", {"n": 7, "executor": "ray"}))
    [built] = await renv.wait_for("test.built", 1, timeout=60)
    assert built.data == {"value": 49} and built.correlationid == cause.correlationid
    [square] = await h.log.jobs(name="square")
    assert square.executor == "ray" and square.status == "succeeded"


async def test_herald_executor_setting_sends_local_jobs_to_ray(
    renv: Env, ray_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_EXECUTOR", "ray")
    monkeypatch.setenv("HERALD_JOBS__RAY__ADDRESS", ray_cluster)
    h = await renv.start(load=[PLUGIN, RAY_PLUGIN], jobs={"cancel_grace_s": 1.0})
    assert h.settings.jobs.default_executor == "ray" and h.settings.jobs.ray.enabled
    job = await h.submit_job("square", {"n": 3})  # pinned to nothing: the default
    assert job.executor == "ray"
    done = await wait_job(renv, job.id, {"succeeded", "failed"})
    assert done.status == "succeeded", done.error  # type: ignore[attr-defined]


async def test_cancel_stops_the_ray_task_and_its_process(
    renv: Env, ray_cluster: str, tmp_path: Path
) -> None:
    h = await renv.start(load=[PLUGIN], jobs=ray_settings(ray_cluster))
    marker = tmp_path / "pids"
    job = await h.submit_job("sleepy", {"seconds": 120, "marker": str(marker)}, executor="ray")
    for _ in range(600):
        if marker.exists() and marker.read_text().strip():
            break
        await asyncio.sleep(0.05)
    pid = int(marker.read_text().split()[0])
    assert Path(f"/proc/{pid}").exists()
    await h.log.cancel_job(job.id)
    done = await wait_job(renv, job.id, {"cancelled"}, timeout=30)
    assert done.status == "cancelled"  # type: ignore[attr-defined]
    for _ in range(100):
        gone = not Path(f"/proc/{pid}").exists() or (
            "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
        if gone:
            break
        await asyncio.sleep(0.1)
    assert gone, f"job process {pid} survived the cancellation"


async def test_crashed_ray_worker_is_a_failed_attempt_and_retried(
    renv: Env, ray_cluster: str
) -> None:
    h = await renv.start(load=[RAY_PLUGIN], jobs={**ray_settings(ray_cluster), "max_attempts": 2})
    job = await h.submit_job("ray_test.kill_worker", {}, executor="ray")
    done = await wait_job(renv, job.id, {"failed"}, timeout=90)
    assert done.attempt == 2  # type: ignore[attr-defined]
    assert "Ray worker" in (done.error or "")  # type: ignore[attr-defined]
    failed = await h.log.query(EventQuery(types=["job.failed"]))
    assert [e.data["will_retry"] for e in failed] == [True, False]


async def test_unreachable_cluster_names_the_address() -> None:
    from herald.errors import BackendUnavailable
    from herald.jobs.executors.ray import RayExecutor
    from herald.settings import RaySettings

    port = _free_port()  # nothing listens there
    ex = RayExecutor(RaySettings(enabled=True, address=f"127.0.0.1:{port}"))
    with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port}") as info:
        await ex.connect()
    assert "ray start --head" in str(info.value)
    with pytest.raises(BackendUnavailable, match=f"ray://127.0.0.1:{port}"):
        await RayExecutor(RaySettings(address=f"ray://127.0.0.1:{port}")).connect()


async def test_unreachable_cluster_fails_the_attempt_with_the_address(renv: Env) -> None:
    port = _free_port()
    h = await renv.start(
        load=[PLUGIN], jobs={**ray_settings(f"127.0.0.1:{port}"), "max_attempts": 1}
    )
    job = await h.submit_job("square", {"n": 2}, executor="ray")
    done = await wait_job(renv, job.id, {"failed"}, timeout=30)
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in (done.error or "")  # type: ignore[attr-defined]
