"""The scheduled monitors run under a real ``herald up`` (issue 14): with a short
``monitoring.schedule`` the ``monitoring.schedule`` cron sensor evaluates the configured SLO
rules over the served traffic, and each run is on record in the event log — a
``monitors.evaluated`` with every outcome (also when nothing fired) and the alert that fired."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

RULES = """
rules:
  - {name: traffic-slo, metric: requests, comparison: ">=", threshold: 3, window: 1h,
     cooldown: 1h, emits: slo.breached}
  - {name: latency-slo, metric: latency_p95, comparison: ">", threshold: 100, window: 1h}
"""


def test_scheduled_monitors_evaluate_the_rules_and_record_it(
    server_factory: Any, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    server = server_factory(
        [],
        HERALD_MONITORING__SCHEDULE="* * * * * */2",  # every two seconds (seconds last)
        HERALD_MONITORING__RULES_FILE=str(rules),
        HERALD_MONITORING__MIN_SAMPLES="2",
        HERALD_SERVING__MODELS=json.dumps(
            {"fake-qa": {"backend": "fake", "model": "x", "options": {"reply": "Paris"}}}
        ),
    )
    server.start()
    with server.client() as c:
        sensors = {s["name"]: s for s in c.get("/v1/sensors").json()["data"]}
        assert sensors["monitoring.schedule"]["cron"] == "* * * * * */2|UTC"
        for _ in range(3):  # traffic the rules look at (the request log)
            body = {"model": "fake-qa", "messages": [{"role": "user", "content": "Capital?"}]}
            r = c.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
        runs: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until a scheduled run fired, and one after it
            got = c.get("/v1/messages", params={"type": "monitors.evaluated", "limit": 100})
            runs = [e for e in got.json()["data"] if e["data"]["trigger"] == "schedule"]
            fired = [i for i, e in enumerate(runs) if e["data"]["fired"]]
            if fired and len(runs) > fired[0] + 1:
                break
            time.sleep(0.5)
        fired = [i for i, e in enumerate(runs) if e["data"]["fired"]]
        assert fired, f"no scheduled run saw the traffic within 60 s: {runs}"
        first = runs[fired[0]]["data"]
        status = {(o["rule"], o["model"]): o for o in first["outcomes"]}
        assert status["traffic-slo", "fake-qa"]["status"] == "fired"
        assert status["traffic-slo", "fake-qa"]["value"] == 3.0
        assert status["latency-slo", "fake-qa"]["status"] == "ok"
        # the next run evaluated again, and the fired rule waits for its cooldown
        later = {
            (o["rule"], o["model"]): o["status"] for o in runs[fired[0] + 1]["data"]["outcomes"]
        }
        assert later["traffic-slo", "fake-qa"] == "cooldown"
        breached = c.get("/v1/messages", params={"type": "slo.breached"}).json()["data"]
        assert [(b["data"]["rule"], b["data"]["model"]) for b in breached] == [
            ("traffic-slo", "fake-qa")
        ]
        assert breached[0]["correlationid"] == runs[fired[0]]["correlationid"]  # same tick
