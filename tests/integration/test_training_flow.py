"""finetune.requested → job (local subprocess) → training.progressed … → finetune.completed →
model.registered, on a microscopic Llama: lineage, run metrics and the artifact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from herald import Herald
from herald.bus import EventQuery
from herald.messages.envelope import Envelope
from herald.settings import Settings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data" / "facts-instruction.csv"


@pytest.fixture
async def herald_rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Herald]:
    """A Herald whose job subprocesses see the same home and database (through the env)."""
    home = tmp_path / "home"
    monkeypatch.setenv("HERALD_HOME", str(home))
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.delenv("HERALD_ARTIFACTS_URL", raising=False)
    settings = Settings(jobs={"lease_s": 5.0, "backoff_initial_s": 0.1})
    h = Herald(settings)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def wait_for(
    h: Herald, type_name: str, correlationid: str, timeout: float = 240
) -> list[Envelope]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await h.log.query(
            EventQuery(types=[type_name], correlationid=correlationid, limit=10000)
        )
        failed = await h.log.query(
            EventQuery(types=["job.failed"], correlationid=correlationid, limit=100)
        )
        if got or loop.time() > deadline:
            return got
        final = [f for f in failed if not f.data.get("will_retry")]
        if final:
            raise AssertionError(f"job failed: {final[-1].data['error']}")
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from herald.models.testing import tiny_llama

    return tiny_llama(tmp_path_factory.mktemp("tiny") / "m")


def request(tiny: Path, **kw: Any) -> dict[str, Any]:
    return {
        "base_model": str(tiny),
        "dataset": str(DATA),
        "model_name": "tiny-facts",
        "max_steps": 4,
        "save_steps": 2,
        "micro_batch_size": 4,
        "sequence_len": 64,
        "learning_rate": 0.01,
        "lora_r": 4,
        "target_modules": ["q_proj", "v_proj"],
        "val_set_size": 0.1,
        "eval_steps": 2,
        **kw,
    }


async def test_finetune_message_trains_and_registers_a_version_with_lineage(
    herald_rt: Herald, tiny: Path
) -> None:
    h = herald_rt
    env = await h.emit(h.catalog.validate("finetune.requested", request(tiny)))
    cid = env.correlationid
    [registered] = await wait_for(h, "model.registered", cid)
    [done] = await wait_for(h, "finetune.completed", cid)
    progressed = await wait_for(h, "training.progressed", cid)
    assert [p.data["step"] for p in progressed if p.data["loss"] is not None] == [1, 2, 3, 4]
    assert any(p.data["eval_loss"] is not None for p in progressed)

    job_id = done.data["job_id"]
    assert done.data["run_id"] == job_id  # deterministic run id per job
    assert done.data["dataset"]["fingerprint"]
    # a data set given as a file is registered first, so lineage points at a version
    [ds] = await wait_for(h, "dataset.registered", cid)
    assert done.data["dataset"]["uri"] == ds.data["uri"] == f"datasets:/{DATA.stem}/1"
    assert done.data["base_model"]["ref"] == str(tiny)
    assert done.data["kind"] == "lora"
    assert "<|im_start|>" in done.data["chat_template"]
    assert done.data["metrics"]["train_loss"] > 0

    mv = h.registry.resolve(registered.data["uri"])
    assert mv.name == "tiny-facts" and mv.kind == "lora"
    assert mv.run_id == job_id and mv.job_id == job_id
    assert mv.chat_template == done.data["chat_template"]
    assert mv.config["lora_r"] == 4
    assert mv.dataset == ds.data["uri"]

    key = f"models/tiny-facts/{job_id}"
    assert mv.artifact_uri == h.artifacts.uri(key)
    files = {p.name for p in h.artifacts.local_dir(key).iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "chat_template.jinja"} <= files
    run = h.registry.get_run(job_id)
    assert run.status == "finished"
    series = h.registry.run_metrics(job_id, ["loss"])["loss"]
    assert [p["step"] for p in series] == [1, 2, 3, 4]
    graph = await h.flow(cid)
    kinds = {n["type"] for n in graph["nodes"]}
    assert {"finetune.requested", "finetune", "finetune.completed", "model.registered"} <= kinds


async def test_a_bad_request_is_refused_before_anything_runs(herald_rt: Herald, tiny: Path) -> None:
    from herald.errors import MessageValidationError

    with pytest.raises(MessageValidationError, match="lora_rank"):
        herald_rt.catalog.validate("finetune.requested", {**request(tiny), "lora_rank": 8})


async def test_an_unknown_base_model_fails_the_job_with_the_reason(
    herald_rt: Herald, tmp_path: Path
) -> None:
    h = herald_rt
    msg = h.catalog.validate(
        "finetune.requested",
        {**request(tmp_path), "base_model": str(tmp_path / "nope"), "max_steps": 1},
    )
    env = await h.emit(msg)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while loop.time() < deadline:
        failed = await h.log.query(
            EventQuery(types=["job.failed"], correlationid=env.correlationid, limit=10)
        )
        if failed:
            break
        await asyncio.sleep(0.2)
    assert failed and "nope" in failed[0].data["error"]
    assert not await h.log.query(
        EventQuery(types=["finetune.completed"], correlationid=env.correlationid)
    )


async def test_cancelling_a_running_job_checkpoints_and_marks_the_run_killed(
    herald_rt: Herald, tiny: Path
) -> None:
    h = herald_rt
    req = request(tiny, max_steps=2000, save_steps=1000, eval_steps=None, val_set_size=0.0)
    env = await h.emit(h.catalog.validate("finetune.requested", req))
    cid = env.correlationid
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while loop.time() < deadline:
        steps = await h.log.query(
            EventQuery(types=["training.progressed"], correlationid=cid, limit=10000)
        )
        if len(steps) >= 3:
            break
        await asyncio.sleep(0.1)
    [requested] = await h.log.query(EventQuery(types=["job.requested"], correlationid=cid))
    job_id = requested.data["job_id"]
    await h.log.cancel_job(job_id)
    [cancelled] = await wait_for(h, "job.cancelled", cid, timeout=60)
    assert cancelled.data["job_id"] == job_id
    # SIGTERM → the callback checkpoints at the end of the step and stops; the run is "killed"
    deadline = loop.time() + 30
    while loop.time() < deadline and h.registry.get_run(job_id).status == "running":
        await asyncio.sleep(0.1)
    assert h.registry.get_run(job_id).status == "killed"
    ckpts = list((h.settings.home / "runs" / job_id / "checkpoints").glob("checkpoint-*"))
    assert ckpts and all((c / "trainer_state.json").is_file() for c in ckpts)
    assert not await h.log.query(EventQuery(types=["finetune.completed"], correlationid=cid))
