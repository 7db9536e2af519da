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
from typing import NamedTuple

import pytest

from herald.bus import EventQuery
from herald.jobs import default_jobs
from herald.jobs.executors.ray import RayExecutor
from herald.sensors import default_registry
from herald.settings import RaySettings
from herald.testing import KIT_PLUGIN, ExecutorContract, ExecutorFactory

from .conftest import Env

pytestmark = pytest.mark.slow

PLUGIN = str(Path(__file__).with_name("jobs_plugin.py"))
RAY_PLUGIN = str(Path(__file__).with_name("ray_plugin.py"))
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster(NamedTuple):
    address: str  # the GCS: 127.0.0.1:<port>
    client: str  # the Ray Client server: ray://127.0.0.1:<port>


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Cluster]:
    """A single-node Ray cluster started for this module."""
    tmp = Path(tempfile.mkdtemp(prefix="hray-", dir="/tmp"))
    port, client_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "RAY_"))}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # a private loopback cluster: Ray's token authentication (on when ~/.ray/auth_token
    # exists) stays off so the test's drivers need no token
    env["RAY_AUTH_MODE"] = "disabled"
    cmd = [
        RAY,
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--ray-client-server-port={client_port}",
        f"--dashboard-agent-listen-port={_free_port()}",
        "--num-cpus=2",  # the distributed fine-tune fits: its driver task asks for no CPU
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
        for wait_port in (port, client_port):  # the GCS first, the Ray Client server later
            while True:
                assert proc.poll() is None, (tmp / "start.log").read_text()[-2000:]
                try:
                    with socket.create_connection(("127.0.0.1", wait_port), timeout=1):
                        break
                except OSError:
                    assert time.monotonic() < deadline, "the Ray head did not come up in 60 s"
                    time.sleep(0.2)
        # ready when a driver can join and run a task (the raylet registers after the GCS)
        probe = (
            f"import ray; ray.init(address={address!r}, log_to_driver=False); "
            "assert ray.get(ray.remote(lambda: 1).remote(), timeout=60) == 1"
        )
        while subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True
        ).returncode:
            assert time.monotonic() < deadline + 60, "the Ray cluster did not accept a driver"
            time.sleep(1)
        yield Cluster(address, f"ray://127.0.0.1:{client_port}")
    finally:
        import ray

        if ray.is_initialized():  # a driver left connected here: Ray's core worker would
            ray.shutdown()  # end pytest itself (exit 1, no report) once the GCS is gone
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


class TestRayExecutorContract(ExecutorContract):
    """The executor kit (herald.testing) on this module's cluster, through the GCS address."""

    @pytest.fixture
    def make_executor(self, ray_cluster: Cluster) -> ExecutorFactory:
        settings = RaySettings(enabled=True, address=ray_cluster.address)
        return lambda: RayExecutor(settings, plugins=[KIT_PLUGIN], cancel_grace_s=1.0)


def ray_settings(address: str, **kw: object) -> dict[str, object]:
    return {"ray": {"enabled": True, "address": address, **kw}, "cancel_grace_s": 1.0}


async def wait_job(env: Env, job_id: str, status: set[str], timeout: float = 120) -> object:
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
    renv: Env, ray_cluster: Cluster
) -> None:
    h = await renv.start(load=[PLUGIN, RAY_PLUGIN], jobs=ray_settings(ray_cluster.address))
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


async def test_ray_client_address_runs_jobs_through_a_queue(
    renv: Env, ray_cluster: Cluster
) -> None:
    h = await renv.start(load=[RAY_PLUGIN], jobs=ray_settings(ray_cluster.client))
    job = await h.submit_job("ray_test.where", {"n": 5}, executor="ray")
    done = await wait_job(renv, job.id, {"succeeded", "failed"})
    assert done.status == "succeeded", done.error  # type: ignore[attr-defined]
    assert done.result["n2"] == 25  # type: ignore[attr-defined]
    lines = [ln.line for ln in await h.log.logs(job.id)]
    assert "running 5 under Ray" in lines
    assert any(ln.endswith("(Ray Client)") for ln in lines)
    progressed = await h.log.query(EventQuery(types=["job.progressed"]))
    assert [e.data["progress"] for e in progressed] == [0.5]


async def test_herald_executor_setting_sends_local_jobs_to_ray(
    renv: Env, ray_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_EXECUTOR", "ray")
    monkeypatch.setenv("HERALD_JOBS__RAY__ADDRESS", ray_cluster.address)
    h = await renv.start(load=[PLUGIN, RAY_PLUGIN], jobs={"cancel_grace_s": 1.0})
    assert h.settings.jobs.default_executor == "ray" and h.settings.jobs.ray.enabled
    job = await h.submit_job("square", {"n": 3})  # pinned to nothing: the default
    assert job.executor == "ray"
    done = await wait_job(renv, job.id, {"succeeded", "failed"})
    assert done.status == "succeeded", done.error  # type: ignore[attr-defined]


async def test_cancel_stops_the_ray_task_and_its_process(
    renv: Env, ray_cluster: Cluster, tmp_path: Path
) -> None:
    h = await renv.start(load=[PLUGIN], jobs=ray_settings(ray_cluster.address))
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
    renv: Env, ray_cluster: Cluster
) -> None:
    h = await renv.start(
        load=[RAY_PLUGIN], jobs={**ray_settings(ray_cluster.address), "max_attempts": 2}
    )
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


ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data" / "facts-instruction.csv"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from herald.models.testing import tiny_llama

    return tiny_llama(tmp_path_factory.mktemp("tiny") / "m")


async def test_distributed_lora_finetune_with_ray_train_on_the_ray_executor(
    renv: Env, ray_cluster: Cluster, tiny: Path
) -> None:
    h = await renv.start(
        jobs={**ray_settings(ray_cluster.address), "lease_s": 5.0, "max_attempts": 1}
    )
    params = {
        "base_model": str(tiny),
        "dataset": str(DATA),
        "model_name": "tiny-ray",
        "max_steps": 4,
        "save_steps": 2,
        "micro_batch_size": 4,
        "sequence_len": 64,
        "learning_rate": 0.01,
        "lora_r": 4,
        "target_modules": ["q_proj", "v_proj"],
        "distributed": {"num_workers": 2, "backend": "ray"},
    }
    job = await h.submit_job("finetune", params, executor="ray")
    done = await wait_job(renv, job.id, {"succeeded", "failed"}, timeout=480)
    assert done.status == "succeeded", done.error  # type: ignore[attr-defined]
    lines = [ln.line for ln in await h.log.logs(job.id)]
    assert any("2 Ray Train worker(s)" in ln for ln in lines)
    [completed] = await renv.wait_for("finetune.completed", 1)
    assert completed.data["metrics"]["num_workers"] == 2.0
    assert completed.data["metrics"]["global_step"] == 4.0
    assert completed.data["kind"] == "lora" and completed.data["run_id"] == job.id
    # rank 0's progress reached the job as messages and as run metrics
    progressed = await renv.wait_for("training.progressed", 4)
    assert [p.data["step"] for p in progressed] == [1, 2, 3, 4]
    series = h.registry.run_metrics(job.id, ["loss"])["loss"]
    assert [p["step"] for p in series] == [1, 2, 3, 4]
    # registered exactly like a single-process fine-tune: a safetensors adapter
    [registered] = await renv.wait_for("model.registered", 1, timeout=60)
    mv = h.registry.resolve(registered.data["uri"])
    assert mv.name == "tiny-ray" and mv.kind == "lora" and mv.job_id == job.id
    key = f"models/tiny-ray/{job.id}"
    assert mv.artifact_uri == h.artifacts.uri(key)
    files = {p.name for p in h.artifacts.local_dir(key).iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "chat_template.jinja"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert h.registry.get_run(job.id).status == "finished"


async def test_sharded_evaluation_equals_the_unsharded_run(
    ray_cluster: Cluster, tmp_path: Path
) -> None:
    import json

    from herald.evaluation.runner import EvaluationPlan, run_evaluation
    from herald.evaluation.suites import parse_suite
    from herald.evaluation.targets import parse_target
    from herald.services import Services
    from herald.serving.backends.fake import VOCAB
    from herald.settings import Settings

    # the fake backend answers VOCAB[0] to every one-token question: every third reference
    # matches, so the metric tells rows apart
    rows = [
        {
            "id": f"q{i}",
            "messages": [{"role": "user", "content": f"question {i}"}],
            "reference": VOCAB[0] if i % 3 == 0 else "something else",
        }
        for i in range(23)
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    suite = parse_suite(
        {
            "name": "shards",
            "dataset": "d.jsonl",
            "generation": {"max_tokens": 1},
            "engines": [{"engine": "reference", "metrics": ["exact_match", "contains"]}],
            "primary_metric": "reference.exact_match",
        },
        base_dir=tmp_path,
    )
    settings = Settings(
        home=tmp_path / "home", jobs={"ray": {"enabled": True, "address": ray_cluster.address}}
    )
    store = Services(settings).evaluations
    spec = parse_target("fake-echo", backend="fake")
    seen: list[tuple[int, int]] = []
    whole = await run_evaluation(EvaluationPlan("whole", suite, spec), store, settings=settings)
    sharded = await run_evaluation(
        EvaluationPlan("sharded", suite, spec, options={"shards": 3}),
        store,
        settings=settings,
        progress=lambda done, total, errors: seen.append((done, total)),
    )
    assert sharded["status"] == whole["status"] == "completed"
    assert sharded["metrics"] == whole["metrics"]
    value = whole["metrics"]["reference.exact_match"]["value"]
    assert 0 < value < 1  # a comparison that can tell rows apart
    items = {i["sample_id"]: i for i in store.items("whole")}
    shard_items = {i["sample_id"]: i for i in store.items("sharded")}
    assert set(items) == set(shard_items) == {r["id"] for r in rows}
    for sid, item in items.items():
        other = shard_items[sid]
        assert (other["index"], other["output"], other["scores"]) == (
            item["index"],
            item["output"],
            item["scores"],
        )
    assert seen[-1] == (23, 23)


CLOSE_RACE = """
import asyncio, time
import ray
from herald.jobs.executors.ray import RayExecutor
from herald.settings import RaySettings

ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
ex = RayExecutor(RaySettings(enabled=True))
ex.gcs_address = "connected"  # as after connect()
refs = [ray.put(i) for i in range(3000)]

async def drop() -> None:  # the event loop keeps releasing object refs, as a worker does
    while refs:
        refs.pop()
        await asyncio.sleep(0.001)

async def main() -> None:
    dropper = asyncio.ensure_future(drop())
    await asyncio.sleep(0.01)
    await ex.close()
    await dropper

asyncio.run(main())
print("survived")
"""


def test_closing_the_executor_while_refs_are_released_keeps_the_process_alive() -> None:
    """An ObjectRef released on the event loop while ray.shutdown() ran in a worker thread
    made Ray end the whole process with exit 1 (seen as a full test run stopping silently);
    close() now shuts down on the loop's own thread."""
    tmp = Path(tempfile.mkdtemp(prefix="hray-", dir="/tmp"))  # Unix socket paths stay short
    try:
        run = subprocess.run(
            [sys.executable, "-c", CLOSE_RACE], capture_output=True, text=True, timeout=180,
            env={**os.environ, "RAY_TMPDIR": str(tmp)}, cwd=tmp,
        )  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert run.returncode == 0 and "survived" in run.stdout, run.stderr[-3000:]
