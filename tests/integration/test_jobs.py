"""Jobs on the inline and local executors: results, progress, logs, retries, cancel, timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from herald.bus import EventQuery
from herald.jobs import default_jobs
from herald.sensors import default_registry

from .conftest import Env

PLUGIN = str(Path(__file__).with_name("jobs_plugin.py"))


@pytest.fixture
async def jenv(sqlite_env: Env) -> Env:
    # the plugin registers into the default registries (as a user's plugin would)
    sqlite_env.jobs = default_jobs
    sqlite_env.sensors = default_registry
    return sqlite_env


async def wait_job(env: Env, job_id: str, status: set[str], timeout: float = 30) -> object:
    assert env.herald is not None
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await env.herald.log.get_job(job_id)
        if job is not None and job.status in status:
            return job
        assert asyncio.get_running_loop().time() < deadline, (
            f"job {job_id} stuck in {job and job.status}"
        )
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("executor", ["inline", "local"])
async def test_sensor_started_job_runs_and_reports(jenv: Env, executor: str) -> None:
    h = await jenv.start(load=[PLUGIN])
    cause = await h.emit(h.catalog.validate("test.build.requested", {"n": 7, "executor": executor}))
    [built] = await jenv.wait_for("test.built", 1, timeout=30)
    assert built.data == {"value": 49}
    [job] = await h.log.jobs(name="square")
    assert job.status == "succeeded" and job.executor == executor and job.attempt == 1
    assert job.progress == 1.0 and job.progress_message == "half way"  # last report kept
    assert job.correlationid == cause.correlationid
    types = [e.type for e in await h.log.query(EventQuery(correlationid=cause.correlationid))]
    assert types[:3] == ["test.build.requested", "job.requested", "job.started"]
    assert {"job.progressed", "job.succeeded", "test.built"} <= set(types)
    progressed = [e for e in await h.log.query(EventQuery(types=["job.progressed"]))]
    assert progressed[0].data["progress"] == 0.5 and progressed[0].data["metrics"] == {"step": 1.0}
    lines = [ln.line for ln in await h.log.logs(job.id)]
    assert "done" in lines
    if executor == "local":
        assert "squaring 7" in lines  # the subprocess's stdout is the job log
    graph = await h.flow(cause.correlationid)
    kinds = {n["kind"] for n in graph["nodes"]}
    assert kinds == {"message", "job"}
    assert {"from": f"job:{job.id}", "to": built.id, "kind": "produced"} in graph["edges"]


@pytest.mark.parametrize("executor", ["inline", "local"])
async def test_failing_job_retries_then_fails(jenv: Env, executor: str) -> None:
    h = await jenv.start(load=[PLUGIN], jobs={"max_attempts": 2})
    job = await h.submit_job("explode", {"reason": "kaput"}, executor=executor)
    done = await wait_job(jenv, job.id, {"failed"})
    assert done.attempt == 2 and "ValueError: kaput" in (done.error or "")  # type: ignore[attr-defined]
    failed = await h.log.query(EventQuery(types=["job.failed"]))
    assert [e.data["will_retry"] for e in failed] == [True, False]
    if executor == "local":
        assert any("Traceback" in ln.line for ln in await h.log.logs(job.id))


@pytest.mark.parametrize("executor", ["inline", "local"])
async def test_job_raising_a_request_error_is_not_retried(jenv: Env, executor: str) -> None:
    h = await jenv.start(load=[PLUGIN], jobs={"max_attempts": 3})
    job = await h.submit_job("reject", {"name": "missing"}, executor=executor)
    done = await wait_job(jenv, job.id, {"failed"})
    assert done.attempt == 1 and "no data set named 'missing'" in (done.error or "")  # type: ignore[attr-defined]
    failed = await h.log.query(EventQuery(types=["job.failed"]))
    assert [e.data["will_retry"] for e in failed] == [False]


async def test_process_that_dies_is_reported(jenv: Env) -> None:
    h = await jenv.start(load=[PLUGIN], jobs={"max_attempts": 1})
    job = await h.submit_job("hard_exit", {}, executor="local")
    done = await wait_job(jenv, job.id, {"failed"})
    assert "exited with code 3" in (done.error or "")  # type: ignore[attr-defined]


async def test_a_job_killed_by_a_signal_names_the_signal_not_an_unrelated_log_line(
    jenv: Env,
) -> None:
    h = await jenv.start(load=[PLUGIN], jobs={"max_attempts": 1})
    job = await h.submit_job("killed", {}, executor="local")
    done = await wait_job(jenv, job.id, {"failed"})
    error = done.error or ""  # type: ignore[attr-defined]
    assert "killed by SIGKILL" in error and "out-of-memory" in error
    assert "UserWarning" not in error  # the last stderr line is not the cause of a kill
    assert any("UserWarning" in ln.line for ln in await h.log.logs(job.id))  # still in the log


async def test_cancel_running_local_job_kills_the_process(jenv: Env, tmp_path: Path) -> None:
    h = await jenv.start(load=[PLUGIN], jobs={"cancel_grace_s": 1.0})
    marker = tmp_path / "pids"
    job = await h.submit_job("sleepy", {"seconds": 60, "marker": str(marker)}, executor="local")
    await wait_job(jenv, job.id, {"running"})
    for _ in range(200):
        if marker.exists():
            break
        await asyncio.sleep(0.05)
    pid = int(marker.read_text().split()[0])
    await h.log.cancel_job(job.id)
    done = await wait_job(jenv, job.id, {"cancelled"}, timeout=15)
    assert done.status == "cancelled"  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert await jenv.wait_for("job.cancelled", 1)


async def test_cancel_queued_job(jenv: Env) -> None:
    h = await jenv.start(load=[PLUGIN], jobs={"local_concurrency": 1})
    blocker = await h.submit_job("sleepy", {"seconds": 2}, executor="local")
    queued = await h.submit_job("sleepy", {"seconds": 2}, executor="local")
    cancelled = await h.log.cancel_job(queued.id)
    assert cancelled.status == "cancelled"
    await wait_job(jenv, blocker.id, {"succeeded"})
    assert (await h.log.get_job(queued.id)).status == "cancelled"  # type: ignore[union-attr]


async def test_job_timeout(jenv: Env) -> None:
    h = await jenv.start(load=[PLUGIN], jobs={"max_attempts": 1})
    definition = h.jobs.get("sleepy")
    definition.timeout_s = 0.5
    try:
        job = await h.submit_job("sleepy", {"seconds": 30}, executor="local")
        done = await wait_job(jenv, job.id, {"failed"})
        assert "timed out after 0.5s" in (done.error or "")  # type: ignore[attr-defined]
    finally:
        definition.timeout_s = None


async def test_unknown_job_and_bad_params_are_refused(jenv: Env) -> None:
    from herald.errors import JobError

    h = await jenv.start(load=[PLUGIN])
    with pytest.raises(JobError, match="unknown job 'nope'"):
        await h.submit_job("nope", {})
    with pytest.raises(JobError, match="seconds"):
        await h.submit_job("sleepy", {"seconds": "soon"})
    with pytest.raises(JobError, match="unknown executor"):
        await h.submit_job("sleepy", {"seconds": 1}, executor="warp")
