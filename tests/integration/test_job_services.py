"""Jobs reach the settings and registry of the Herald that runs them through ``ctx.services``:
an ``inline`` job gets the worker's own (programmatic ``Settings`` included), a ``local`` job
builds its process's from the environment it was started with."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from herald import Herald
from herald.jobs.registry import default_jobs
from herald.sensors.base import default_registry

from .conftest import Env

PLUGIN = str(Path(__file__).with_name("jobs_plugin.py"))


async def run_probe(env: Env, executor: str) -> dict[str, Any]:
    h = await env.start(load=[PLUGIN], evaluation={"concurrency": 7})
    h.registry.register_model_version(
        "probe-model", artifact_uri=(env.tmp / "m").as_uri(), kind="full"
    )
    job = await h.submit_job("services.probe", {}, executor=executor)
    return await finished(h, job.id)


async def finished(h: Herald, job_id: str) -> dict[str, Any]:
    """The result of a job that succeeded (within 60 s)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        record = await h.log.get_job(job_id)
        if record is not None and record.status in {"succeeded", "failed"}:
            break
        assert asyncio.get_running_loop().time() < deadline, f"job {job_id} never finished"
        await asyncio.sleep(0.05)
    assert record.status == "succeeded", record.error
    return dict(record.result or {})


@pytest.fixture
def jenv(sqlite_env: Env) -> Env:
    sqlite_env.jobs = default_jobs  # the plugin registers into the default registries
    sqlite_env.sensors = default_registry
    return sqlite_env


async def test_an_inline_job_gets_the_workers_services(jenv: Env) -> None:
    got = await run_probe(jenv, "inline")
    assert got["concurrency"] == 7  # the programmatic Settings, not the environment's default
    assert got["home"] == str(jenv.tmp / "home")
    assert "probe-model" in got["models"]


async def test_a_local_job_builds_its_services_from_its_environment(
    jenv: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_HOME", str(jenv.tmp / "home"))
    monkeypatch.setenv("HERALD_DATABASE_URL", jenv.url)
    monkeypatch.setenv("HERALD_EVALUATION__CONCURRENCY", "5")
    got = await run_probe(jenv, "local")
    assert got["concurrency"] == 5  # a job process reads its own environment
    assert "probe-model" in got["models"]  # the same registry, opened in the job process


async def test_an_inline_evaluation_job_uses_the_heralds_settings_and_results_store(
    jenv: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The evaluation job read its settings from the environment alone: run inline by a Herald
    built from programmatic Settings, it did not know the Herald's served models and stored its
    results under the environment's home."""
    elsewhere = jenv.tmp / "elsewhere"
    monkeypatch.setenv("HERALD_HOME", str(elsewhere))
    monkeypatch.delenv("HERALD_DATABASE_URL", raising=False)
    served = {"fake-qa": {"backend": "fake", "model": "fake-qa", "options": {"reply": "Paris"}}}
    h = await jenv.start(serving={"models": served}, evaluation={"on_register": False})
    params = {"target": "fake-qa", "suite": "tiny", "evaluation_id": "inline-1", "limit": 2}
    job = await h.submit_job("evaluation.run", params, executor="inline")
    await finished(h, job.id)  # it returns evaluation.completed, emitted as a message
    stored = h.services.evaluations.get("inline-1")
    assert (stored["status"], stored["done"], stored["failed_items"]) == ("completed", 2, 0)
    assert not (elsewhere / "evaluations").exists()
