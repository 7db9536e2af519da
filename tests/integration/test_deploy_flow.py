"""Deployments end to end on the fake backend: messages → sensors → manager → routing, over a
real uvicorn server for the load tests (blue-green with zero failed requests, failover)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
from fastapi import FastAPI

from herald.api import create_app
from herald.bootstrap import Herald
from herald.bus import EventQuery
from herald.messages.envelope import Envelope
from herald.settings import Settings

KEY = "k-deploy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Herald, str]]:
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        sensors={"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 2},
        serving={"bundled": False, "registry": False, "deployments": {"health_interval_s": 0.2}},
    )
    h = Herald(settings)
    for v in (1, 2, 3):
        h.registry.register_model_version("m", artifact_uri=f"file:///nowhere/m{v}", kind="full")
    h.registry.set_alias("m", "champion", 1)
    app = create_app(h, KEY, manage_lifecycle=False)
    await h.start()
    async with serve(app) as url:
        yield h, url
    await h.stop()


async def wait_for(h: Herald, type_: str, n: int = 1, **match: Any) -> list[Envelope]:
    for _ in range(1000):
        got = [
            e
            for e in await h.log.query(EventQuery(types=[type_], limit=10000))
            if all(e.data.get(k) == v for k, v in match.items())
        ]
        if len(got) >= n:
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {n} x {type_} {match}")


def target(model: str, weight: float = 100, replicas: int = 1, **options: Any) -> dict[str, Any]:
    return {
        "model": model,
        "weight": weight,
        "replicas": replicas,
        "backend": "fake",
        "options": options,
    }


async def deploy(h: Herald, name: str, targets: list[dict[str, Any]], revision: int) -> None:
    await h.emit(h.catalog.validate("deployment.requested", {"name": name, "targets": targets}))
    [ready] = await wait_for(h, "deployment.ready", name=name, revision=revision)
    assert ready.data["replicas"] == sum(t["replicas"] for t in targets)


async def versions(h: Herald, name: str, n: int, user: str | None = None) -> list[str]:
    return [(await h.serving.route(name, user=user)).spec.version for _ in range(n)]


async def test_canary_split_sticky_users_and_traffic_messages(env: tuple[Herald, str]) -> None:
    h, url = env
    await deploy(h, "chat", [target("models:/m@champion", 90), target("models:/m/2", 10)], 1)
    got = await versions(h, "chat", 4000)
    canary = got.count("models:/m/2") / len(got)
    assert 0.08 < canary < 0.12  # 10 % ± 2 % (binomial sd 0.5 %)
    assert set(got) == {"models:/m/1", "models:/m/2"}
    # sticky: one user, one version; users spread like the weights
    for u in ("alice", "bob", "carol"):
        assert len(set(await versions(h, "chat", 30, user=u))) == 1
    per_user = [(await versions(h, "chat", 1, user=f"u{i}"))[0] for i in range(2000)]
    assert 0.08 < per_user.count("models:/m/2") / 2000 < 0.12
    # promote the canary to 100 % by a message: replicas are reused, nothing reloads
    loads_before = h.serving.metrics.loads.labels("chat", "fake")._value.get()
    await h.emit(
        h.catalog.validate(
            "deployment.traffic.changed",
            {"name": "chat", "weights": {"models:/m/2": 100, "models:/m@champion": 0}},
        )
    )
    await wait_for(h, "deployment.ready", name="chat", revision=2)
    assert set(await versions(h, "chat", 200)) == {"models:/m/2"}
    assert h.serving.metrics.loads.labels("chat", "fake")._value.get() == loads_before
    # the official client sees the deployment and it answers
    async with openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0) as c:
        assert "chat" in [m.id async for m in c.models.list()]
        r = await c.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
        assert r.choices[0].message.content
    text = (
        h.metrics.render().decode() if isinstance(h.metrics.render(), bytes) else h.metrics.render()
    )
    assert 'herald_deployment_traffic_weight{deployment="chat",version="models:/m/2"} 100.0' in text
    assert (
        'herald:request_success_total{finished_reason="length",model_name="chat",version="models:/m/2"}'
        in text
    )
    # rollback restores the 90/10 split as a new revision
    await h.emit(h.catalog.validate("deployment.rollback", {"name": "chat"}))
    [rb] = await wait_for(h, "deployment.rolledback", name="chat")
    assert rb.data["revision"] == 3
    got = await versions(h, "chat", 500)
    assert got.count("models:/m/1") > 350


async def test_redeploy_when_the_alias_moves(env: tuple[Herald, str]) -> None:
    h, _ = env
    await deploy(h, "follow", [target("models:/m@champion")], 1)
    assert set(await versions(h, "follow", 5)) == {"models:/m/1"}
    await h.emit(h.catalog.validate("model.promote", {"name": "m", "version": 3}))
    await wait_for(h, "deployment.ready", name="follow", revision=2)
    assert set(await versions(h, "follow", 5)) == {"models:/m/3"}
    dep = h.deployments.store.get("follow")
    assert dep.targets[0].model == "models:/m@champion" and dep.targets[0].version == "models:/m/3"


async def test_bad_requests_end_in_deployment_failed(env: tuple[Herald, str]) -> None:
    h, _ = env
    await h.emit(
        h.catalog.validate(
            "deployment.requested", {"name": "bad", "targets": [target("models:/nope@champion")]}
        )
    )
    [failed] = await wait_for(h, "deployment.failed", name="bad")
    assert "nope" in failed.data["error"]
    with pytest.raises(Exception, match="does not exist"):
        await h.serving.route("bad")


async def test_blue_green_switch_under_load_fails_no_request(env: tuple[Herald, str]) -> None:
    h, url = env
    await deploy(h, "bg", [target("models:/m/1", replicas=2, delay_s=0.005)], 1)
    stop = asyncio.Event()
    results: list[str] = []
    errors: list[BaseException] = []

    async def client_loop(c: openai.AsyncOpenAI, i: int) -> None:
        while not stop.is_set():
            try:
                stream = await c.chat.completions.create(
                    model="bg",
                    messages=[{"role": "user", "content": "go"}],
                    max_tokens=8,
                    stream=True,
                    user=f"user{i}",
                )
                text = "".join(
                    [x.choices[0].delta.content or "" async for x in stream if x.choices]
                )
                results.append(text)
            except BaseException as exc:
                errors.append(exc)

    async with openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0) as c:
        tasks = [asyncio.create_task(client_loop(c, i)) for i in range(8)]
        await asyncio.sleep(0.5)
        old = [r for g in h.deployments.active["bg"].groups for r in g.replicas]
        await deploy(h, "bg", [target("models:/m/2", replicas=2, delay_s=0.005)], 2)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
    assert not errors, errors[:3]
    assert len(results) > 20
    assert set(await versions(h, "bg", 10)) == {"models:/m/2"}
    for _ in range(200):  # the old replicas drain and close
        if all(r.outstanding == 0 for r in old):
            break
        await asyncio.sleep(0.02)
    assert all(r.outstanding == 0 for r in old)


async def test_failover_when_a_replica_dies(env: tuple[Herald, str]) -> None:
    h, url = env
    await deploy(h, "fo", [target("models:/m/1", replicas=2)], 1)
    group = h.deployments.active["fo"].groups[0]
    dead, alive = group.replicas
    dead.watched.inner.fail_after = 0  # crashes at its next generation
    # and, like a dead process, fails its health checks: otherwise a health check on a slow
    # machine puts it back into rotation after the cool-down and a second request hits it
    dead.watched.inner.options["healthy"] = False
    async with openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0) as c:
        failures = 0
        for _ in range(20):
            try:
                await c.chat.completions.create(
                    model="fo", messages=[{"role": "user", "content": "x"}], max_tokens=2
                )
            except openai.InternalServerError:
                failures += 1
        assert failures <= 1  # at most the request that found the crash
    assert not dead.healthy and alive.healthy
    # a health check failing takes the other one out too: 503, not a hang
    alive.watched.inner.options["healthy"] = False
    await h.deployments.check_health()
    with pytest.raises(Exception, match="no healthy replica"):
        await h.serving.route("fo")
    # recovery after the cool-down once health checks pass
    dead.watched.inner.fail_after = None
    dead.watched.inner.options["healthy"] = True
    alive.watched.inner.options["healthy"] = True
    await asyncio.sleep(0.25)
    await h.deployments.check_health()
    assert dead.healthy and alive.healthy
