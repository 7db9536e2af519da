"""Done-when: killing the worker mid-training and restarting resumes from the last checkpoint.

A real ``herald up`` runs the fine-tuning job in a subprocess; the server is SIGKILLed (its job
subprocess dies with it) after a checkpoint was written; after a restart the lease expires, the
job runs again (attempt 2, same job id, same run) and continues from the checkpoint's step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data" / "facts-instruction.csv"


def events(c: httpx.Client, type_name: str, cid: str) -> list[dict[str, Any]]:
    r = c.get("/v1/messages", params={"type": type_name, "correlationid": cid, "limit": 1000})
    r.raise_for_status()
    return list(r.json()["data"])


def wait(c: httpx.Client, type_name: str, cid: str, timeout: float, pred: Any = None) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [e for e in events(c, type_name, cid) if pred is None or pred(e)]
        if got:
            return got
        final = [e for e in events(c, "job.failed", cid) if not e["data"]["will_retry"]]
        assert not final, final[-1]["data"]["error"]
        time.sleep(0.1)
    raise AssertionError(f"no {type_name} within {timeout}s")


def test_sigkilled_worker_resumes_training_from_the_last_checkpoint(tmp_path: Path) -> None:
    from herald.models.testing import tiny_llama

    tiny = tiny_llama(tmp_path / "tiny")
    home = tmp_path / "home"
    server = Server(
        home, [], {"HERALD_JOBS__LEASE_S": "2", "HERALD_JOBS__BACKOFF_INITIAL_S": "0.1"}
    )
    server.start(timeout=90)
    try:
        payload = {
            "base_model": str(tiny),
            "dataset": str(DATA),
            "model_name": "tiny-resume",
            "max_steps": 150,
            "save_steps": 5,
            "save_total_limit": 3,
            "micro_batch_size": 4,
            "sequence_len": 64,
            "lora_r": 4,
            "target_modules": ["q_proj", "v_proj"],
        }
        with server.client() as c:
            r = c.post("/v1/messages", json={"type": "finetune.requested", "data": payload})
            assert r.status_code == 202, r.text
            cid = r.json()["correlationid"]
            # kill once a checkpoint is complete, well before the end; which one depends on the
            # machine's speed (save_total_limit rotates the oldest away, so wait for any)
            wait(c, "training.progressed", cid, 180, lambda e: e["data"]["step"] >= 7)
            job_id = events(c, "job.requested", cid)[0]["data"]["job_id"]
        ckpts = home / "runs" / job_id / "checkpoints"
        deadline = time.monotonic() + 60
        while not any(ckpts.glob("checkpoint-*/trainer_state.json")):
            assert time.monotonic() < deadline, f"no complete checkpoint under {ckpts} in 60 s"
            time.sleep(0.05)
        server.kill()
        server.start(timeout=90)
        with server.client() as c:
            before = max(e["data"]["step"] for e in events(c, "training.progressed", cid))
            assert before < 150  # the kill really happened mid-training
            [done] = wait(c, "finetune.completed", cid, 300)
            assert done["data"]["job_id"] == job_id and done["data"]["run_id"] == job_id
            resumed = done["data"]["metrics"]["resumed_from_step"]
            assert resumed >= 5 and resumed % 5 == 0
            last_start = events(c, "job.started", cid)[-1]
            assert last_start["data"]["attempt"] >= 2
            # the last attempt's first step continues after the checkpoint, not from 1
            progressed = events(c, "training.progressed", cid)
            after = [e["data"]["step"] for e in progressed if e["seq"] > last_start["seq"]]
            assert after[0] == resumed + 1
            assert after[-1] == 150
            wait(c, "model.registered", cid, 60)
            r = c.get(f"/v1/runs/{job_id}")
            if r.status_code == 200:
                assert r.json()["status"] == "finished"
    finally:
        server.stop()
