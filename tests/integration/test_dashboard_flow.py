"""``GET /v1/flows/{id}?progress=collapsed``: a job that reports progress a hundred times is one
progress node per job and message type (with the count and the last progress), not a column of a
hundred nodes; without the parameter the graph keeps every message (``herald flow --json``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import herald
from herald.api import create_app
from herald.messages.lifecycle import TrainingProgressed

from .conftest import Env

KEY = "flow-key"
STEPS = 100


class Start(herald.Message, type="flowtest.start"):
    steps: int


class Done(herald.Message, type="flowtest.done"):
    steps: int


@pytest.fixture
async def api(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    @herald.sensor(on=Start, registry=env.sensors, name="start")
    def start(msg: Start, ctx: herald.SensorContext) -> None:
        ctx.run_job("flowtest.steps", {"steps": msg.steps})
        ctx.run_job("flowtest.steps", {"steps": 3})  # a second job: its own progress node

    @herald.job(name="flowtest.steps", executor="inline", registry=env.jobs)
    def steps(steps: int, ctx: herald.JobContext) -> int:
        for s in range(1, steps + 1):
            ctx.progress(s / steps, f"step {s}/{steps}")
            if s % 10 == 0:  # like a fine-tune's curves: produced by the job, collapsed too
                ctx.emit(
                    TrainingProgressed(
                        job_id=ctx.job_id, run_id="r", model_name="m", step=s, max_steps=steps
                    )
                )
        ctx.emit(Done(steps=steps))
        return steps

    h = await env.start()
    app = create_app(h, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield c


async def run_flow(api: httpx.AsyncClient, env: Env) -> str:
    r = await api.post("/v1/messages", json={"type": "flowtest.start", "data": {"steps": STEPS}})
    assert r.status_code == 202, r.text
    flow_id = str(r.json()["correlationid"])
    await env.wait_for("flowtest.done", 2, timeout=60)
    await env.wait_for("job.succeeded", 2, timeout=30)
    return flow_id


def by_kind(graph: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [n for n in graph["nodes"] if n["kind"] == kind]


async def test_collapsed_flow_has_one_progress_node_per_job_and_type(
    api: httpx.AsyncClient, env: Env
) -> None:
    flow_id = await run_flow(api, env)
    full = (await api.get(f"/v1/flows/{flow_id}")).json()
    assert [n["type"] for n in full["nodes"]].count("job.progressed") == STEPS + 3

    r = await api.get(f"/v1/flows/{flow_id}", params={"progress": "collapsed"})
    assert r.status_code == 200, r.text
    graph = r.json()
    jobs = {n["id"]: n for n in by_kind(graph, "job")}
    assert len(jobs) == 2
    progress = by_kind(graph, "progress")
    assert sorted((n["type"], n["count"]) for n in progress) == [
        ("job.progressed", 3),
        ("job.progressed", STEPS),
        ("training.progressed", STEPS // 10),
    ]
    assert not [n for n in by_kind(graph, "message") if n["type"].endswith(".progressed")]
    big = next(n for n in progress if n["count"] == STEPS)
    assert (big["progress"], big["message"]) == (1.0, f"step {STEPS}/{STEPS}")
    assert big["data"]["message"] == f"step {STEPS}/{STEPS}"  # the last message's payload
    assert big["time"] <= big["last_time"]

    # edges: each progress node hangs off its own job, once; the rest of the graph is intact
    ids = {n["id"] for n in graph["nodes"]}
    assert all(e["from"] in ids and e["to"] in ids for e in graph["edges"])
    into = {n["id"]: [e for e in graph["edges"] if e["to"] == n["id"]] for n in progress}
    for n in progress:
        [edge] = into[n["id"]]
        assert edge["from"] == n["job"] and edge["from"] in jobs
        assert edge["kind"] == ("reported" if n["type"] == "job.progressed" else "produced")
    assert len({(e["from"], e["to"], e["kind"]) for e in graph["edges"]}) == len(graph["edges"])
    kept = {n["id"] for n in full["nodes"] if not n.get("type", "").endswith(".progressed")}
    assert kept <= ids
    assert len(graph["nodes"]) == len(kept) + 3
    dones = [n["id"] for n in by_kind(graph, "message") if n["type"] == "flowtest.done"]
    produced = {e["to"]: e["from"] for e in graph["edges"] if e["kind"] == "produced"}
    assert sorted(produced[d] for d in dones) == sorted(jobs)


async def test_progress_parameter_is_validated(api: httpx.AsyncClient, env: Env) -> None:
    r = await api.post("/v1/messages", json={"type": "flowtest.start", "data": {"steps": 1}})
    flow_id = r.json()["correlationid"]
    bad = await api.get(f"/v1/flows/{flow_id}", params={"progress": "sometimes"})
    assert bad.status_code == 422
    assert "progress" in bad.text
    same = await api.get(f"/v1/flows/{flow_id}", params={"progress": "all"})
    assert same.status_code == 200
    assert not by_kind(same.json(), "progress")
