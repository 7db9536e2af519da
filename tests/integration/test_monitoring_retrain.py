"""The real loop on a full Herald (built-in plugins, local job subprocesses, bundled MiniLM):
topic drift in the request log → monitors.evaluate → drift.detected (MMD on embeddings) →
dataset.register of accepted traffic → datasets job → dataset.registered → finetune.requested
→ finetune job on a microscopic Llama → finetune.completed → model.registered, one flow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald import Herald
from herald.bus import EventQuery
from herald.messages.envelope import Envelope
from herald.monitoring.messages import MonitorsEvaluate
from herald.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

RULES = """rules:
  - {name: topic-drift, metric: prompt_embedding_drift, comparison: "<", threshold: 0.01,
     window: 1h, reference_window: 1h, cooldown: 6h}
"""


def seed_traffic(home: Path) -> list[str]:
    facts = [
        json.loads(line)["messages"][0]["content"]
        for line in (ROOT / "examples/data/facts-chat.jsonl").read_text().splitlines()
    ][:40]
    hand = [
        json.loads(line)["question"]
        for line in (ROOT / "examples/rag/handbook-qa.jsonl").read_text().splitlines()
    ]
    now = time.time()
    rows = [
        {"time": now - 5400 + i, "model": "tiny-facts", "status": 200, "latency_s": 0.1,
         "request_id": f"ref{i}", "input": f"user: {q}", "output": "ok"}
        for i, q in enumerate(facts)
    ] + [
        {"time": now - 900 + i, "model": "tiny-facts", "status": 200, "latency_s": 0.1,
         "request_id": f"live{i}", "input": f"user: {q}", "output": f"See the handbook ({i})."}
        for i, q in enumerate(hand)
    ]  # fmt: skip
    folder = home / "serving" / "requests"
    folder.mkdir(parents=True)
    (folder / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [r["request_id"] for r in rows if r["request_id"].startswith("live")]


@pytest.fixture
async def herald_rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Herald]:
    from herald.models.testing import tiny_llama

    tiny = tiny_llama(tmp_path / "tiny")
    home = tmp_path / "home"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    monkeypatch.setenv("HERALD_HOME", str(home))
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'h.db'}")
    monkeypatch.delenv("HERALD_ARTIFACTS_URL", raising=False)
    retrain = {
        "base_model": str(tiny),
        "min_rows": 10,
        "finetune": {"max_steps": 2, "micro_batch_size": 4, "sequence_len": 64,
                     "lora_r": 4, "target_modules": ["q_proj", "v_proj"], "save_steps": 2},
    }  # fmt: skip
    settings = Settings(
        jobs={"lease_s": 5.0, "backoff_initial_s": 0.1},
        monitoring={"rules_file": str(rules), "retrain": retrain},
    )
    h = Herald(settings)
    for rid in seed_traffic(home):
        h.services.monitoring.add_feedback(rid, 1.0, thumbs="up")
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def wait_for(h: Herald, type_name: str, cid: str, timeout: float = 300) -> Envelope:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        got = await h.log.query(EventQuery(types=[type_name], correlationid=cid, limit=100))
        if got:
            return got[0]
        failed = await h.log.query(EventQuery(types=["job.failed"], correlationid=cid, limit=10))
        final = [f for f in failed if not f.data.get("will_retry")]
        if final:
            raise AssertionError(f"job failed: {final[-1].data['error']}")
        skipped = await h.log.query(EventQuery(types=["retrain.skipped"], correlationid=cid))
        if skipped:
            raise AssertionError(f"retrain skipped: {skipped[0].data['reason']}")
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {type_name} in flow {cid} after {timeout}s")


async def test_topic_drift_retrains_and_registers(herald_rt: Herald) -> None:
    h = herald_rt
    start = await h.emit(MonitorsEvaluate(rules=["topic-drift"]))
    cid = start.correlationid
    drift = await wait_for(h, "drift.detected", cid)
    assert drift.data["evidence"]["test"]["p_value"] < 0.01
    ds = await wait_for(h, "dataset.registered", cid)
    assert ds.data["name"] == "traffic-tiny-facts" and ds.data["rows"] == 39
    ft = await wait_for(h, "finetune.requested", cid)
    assert ft.data["dataset"] == ds.data["uri"]
    registered = await wait_for(h, "model.registered", cid)
    assert registered.data["name"] == "tiny-facts"
    mv = h.registry.resolve(registered.data["uri"])
    assert mv.dataset == ds.data["uri"]
    kinds = {n["type"] for n in (await h.flow(cid))["nodes"]}
    assert {"monitors.evaluate", "drift.detected", "dataset.register", "finetune.requested",
            "finetune.completed", "model.registered"} <= kinds  # fmt: skip
