"""In-process Herald instances with isolated registries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from herald import Herald
from herald.bus import EventQuery
from herald.jobs import JobRegistry
from herald.messages import Envelope
from herald.sensors import SensorRegistry
from herald.settings import Settings


class Env:
    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        self.url = url
        self.sensors = SensorRegistry()
        self.jobs = JobRegistry()
        self.herald: Herald | None = None

    def settings(self, **kw: Any) -> Settings:
        base: dict[str, Any] = {"home": self.tmp / "home", "database_url": self.url}
        base["sensors"] = {
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "max_attempts": 3,
            **kw.pop("sensors", {}),
        }
        base["jobs"] = {"lease_s": 1.0, "backoff_initial_s": 0.05, **kw.pop("jobs", {})}
        return Settings(**base, **kw)

    async def start(self, load: list[str] | None = None, **kw: Any) -> Herald:
        self.herald = Herald(self.settings(**kw), sensors=self.sensors, jobs=self.jobs, load=load)
        await self.herald.start()
        return self.herald

    async def restart(self) -> Herald:
        assert self.herald is not None
        await self.herald.stop()
        return await self.start()

    async def wait_for(
        self,
        type_name: str,
        n: int = 1,
        timeout: float = 15,
        where: Callable[[Envelope], bool] | None = None,
    ) -> list[Envelope]:
        assert self.herald is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            got = await self.herald.log.query(EventQuery(types=[type_name], limit=10000))
            if where is not None:
                got = [e for e in got if where(e)]
            if len(got) >= n or asyncio.get_running_loop().time() > deadline:
                return got
            await asyncio.sleep(0.02)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    if request.param == "postgres":
        url = str(request.getfixturevalue("fresh_postgres_url"))
    else:
        url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'h.db'}"
    e = Env(tmp_path, url)
    yield e
    if e.herald is not None:
        await e.herald.stop()


@pytest.fixture
async def sqlite_env(tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    yield e
    if e.herald is not None:
        await e.herald.stop()
