"""Cron sensors fire under a real ``herald up`` (issue 14: they never did — the fair share
counted only event sensors while "mine" counted every owned one, so no cron sensor was owned)."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_a_cron_sensor_fires_within_its_period_under_herald_up(server_factory: Any) -> None:
    server = server_factory(["tests/e2e/cron_plugin.py"])
    server.start()
    with server.client() as c:
        ticks: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(ticks) < 2:
            r = c.get("/v1/messages", params={"type": "test.cron.ticked", "limit": 10})
            assert r.status_code == 200, r.text
            ticks = r.json()["data"]
            time.sleep(0.5)
        assert len(ticks) >= 2, "the cron sensor did not fire twice within 30 s"
        assert len({t["data"]["tick"] for t in ticks}) == len(ticks)  # one message per tick
        sensors = {s["name"]: s for s in c.get("/v1/sensors").json()["data"]}
        cron = sensors["every-two-seconds"]
        assert cron["owned"] is True
        assert cron["lag"] == 0  # a cron sensor has no backlog of log events
