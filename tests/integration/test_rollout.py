"""Progressive rollout end to end on the real sensors, job worker and deployment manager (fake
backend replicas): an alias move → the new version as a canary beside the stable one →
``deployment.watch`` job reads the request log → ``deployment.rolledout`` (canary at 100 %) or
``deployment.rolledback`` (errors), each step caused by the one before, in one flow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from herald.bootstrap import Herald
from herald.bus import EventQuery
from herald.messages.envelope import Envelope
from herald.settings import Settings

ROLLOUT = {
    "strategy": "canary",
    "canary_weight": 20,
    "min_requests": 4,
    "watch_s": 0.3,
    "max_watch_s": 60,
    "check_interval_s": 0.1,
    "max_error_rate": 0.25,
}


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Herald]:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path))
    monkeypatch.setenv("HERALD_EVALUATION__PROMOTION", "false")
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        sensors={"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 2},
        serving={"bundled": False, "registry": False, "deployments": {"health_interval_s": 0.2}},
    )
    h = Herald(settings)
    for v in (1, 2):
        h.registry.register_model_version("m", artifact_uri=f"file:///nowhere/m{v}", kind="full")
    h.registry.set_alias("m", "champion", 1)
    h.deployments.serving = True  # this process applies deployments (as the API process does)
    await h.start()
    yield h
    await h.stop()


async def wait_for(h: Herald, type_: str, timeout: float = 30.0, **match: Any) -> Envelope:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in await h.log.query(EventQuery(types=[type_], limit=1000)):
            if all(e.data.get(k) == v for k, v in match.items()):
                return e
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {type_} {match}")


def log_requests(home: Path, version: str, n: int, status: int = 200) -> None:
    """Lines as the gateway's request log writes them (serving/requestlog.py)."""
    folder = home / "serving" / "requests"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "requests.jsonl").open("a", encoding="utf-8") as f:
        for i in range(n):
            rec = {"time": time.time(), "request_id": f"r-{version}-{status}-{i}",
                   "endpoint": "chat", "model": "chat", "version": version, "backend": "fake",
                   "status": status, "latency_s": 0.05}  # fmt: skip
            f.write(json.dumps(rec) + "\n")


async def canary_started(h: Herald) -> Envelope:
    emit = h.catalog.validate
    targets = [{"model": "models:/m@champion", "weight": 100, "backend": "fake"}]
    await h.emit(emit("deployment.requested", {"name": "chat", "targets": targets, "rollout": ROLLOUT}))  # fmt: skip
    await wait_for(h, "deployment.ready", name="chat", revision=1)
    h.registry.set_alias("m", "champion", 2)
    promoted = emit("model.promoted", {"name": "m", "version": 2, "alias": "champion",
                                       "previous_version": 1, "uri": "models:/m/2"})  # fmt: skip
    sent = await h.emit(promoted)
    change = await wait_for(h, "deployment.traffic.changed", name="chat")
    assert change.data["add"][0]["model"] == "models:/m/2"
    assert change.data["add"][0]["weight"] == 20 and change.data["weights"] == {"models:/m/1": 80}
    await wait_for(h, "deployment.ready", name="chat", revision=2)
    watch = await wait_for(h, "deployment.watch", name="chat")
    assert watch.data["canary_version"] == "models:/m/2"
    assert watch.data["stable_version"] == "models:/m/1"
    weights = {g.version: g.target.weight for g in h.deployments.active["chat"].groups}
    assert weights == {"models:/m/1": 80, "models:/m/2": 20}
    assert watch.correlationid == sent.correlationid
    return sent


async def chain(h: Herald, last: Envelope) -> list[str]:
    """Types from ``last`` up its causation chain to the root."""
    by_id = {e.id: e for e in await h.log.query(EventQuery(correlationid=last.correlationid, limit=1000))}  # fmt: skip
    types, cur = [], last
    while True:
        types.append(cur.type)
        if cur.causationid is None or cur.causationid not in by_id:
            break
        cur = by_id[cur.causationid]
    return types[::-1]


async def test_healthy_canary_is_rolled_out(env: Herald, tmp_path: Path) -> None:
    h = env
    await canary_started(h)
    log_requests(tmp_path, "models:/m/1", 10)
    log_requests(tmp_path, "models:/m/2", 2)
    await asyncio.sleep(0.5)  # past watch_s, but only 2 of 4 canary requests: keeps watching
    assert await h.log.query(EventQuery(types=["deployment.rolledout"])) == []
    log_requests(tmp_path, "models:/m/2", 3)
    out = await wait_for(h, "deployment.rolledout", name="chat")
    assert out.data["version"] == "models:/m/2" and out.data["replaced"] == "models:/m/1"
    ev = out.data["evidence"]
    assert ev["canary"]["requests"] == 5 and ev["canary"]["error_rate"] == 0.0
    assert ev["stable"]["requests"] == 10
    await wait_for(h, "deployment.ready", name="chat", revision=3)
    dep = h.deployments.store.get("chat")
    assert [(t.model, t.version, t.weight) for t in dep.targets] == [
        ("models:/m@champion", "models:/m/2", 100.0)
    ]  # the stable target follows the alias, now at the new version
    routed = {(await h.serving.route("chat", user=None)).spec.version for _ in range(30)}
    assert routed == {"models:/m/2"}
    assert await chain(h, out) == [
        "model.promoted",
        "deployment.traffic.changed",
        "deployment.ready",
        "deployment.watch",
        "job.requested",
        "job.started",
        "deployment.traffic.changed",
        "deployment.rolledout",
    ]


async def test_failing_canary_is_rolled_back(env: Herald, tmp_path: Path) -> None:
    h = env
    await canary_started(h)
    log_requests(tmp_path, "models:/m/2", 3)
    log_requests(tmp_path, "models:/m/2", 2, status=500)
    rb = await wait_for(h, "deployment.rollback", name="chat")
    assert rb.data["away_from"] == "models:/m/2"
    assert "error rate 40.0% over 5 requests > max 25.0%" in rb.data["reason"]
    assert rb.data["evidence"]["canary"]["errors"] == 2
    done = await wait_for(h, "deployment.rolledback", name="chat")
    assert [t["version"] for t in done.data["targets"]] == ["models:/m/1"]
    assert (
        done.data["away_from"] == "models:/m/2" and done.data["evidence"]["canary"]["errors"] == 2
    )
    await wait_for(h, "deployment.ready", name="chat", revision=3)
    routed = {(await h.serving.route("chat", user=None)).spec.version for _ in range(30)}
    assert routed == {"models:/m/1"}
    assert (await chain(h, done))[-4:] == ["job.requested", "job.started", "deployment.rollback", "deployment.rolledback"]  # fmt: skip
    assert await h.log.query(EventQuery(types=["deployment.rolledout"])) == []
