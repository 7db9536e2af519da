"""deploy/grafana/herald.json only queries metrics Herald really exports, with their labels."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from herald import Herald
from herald.settings import Settings

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "herald.json"
METRIC = re.compile(r"\b(herald[:_][a-z0-9_:]+)")
BY = re.compile(r"by \(([^)]*)\)")


def exported(registry: CollectorRegistry) -> dict[str, set[str]]:
    """Sample names (``x_total``, ``x_bucket``…) → label names, without any traffic.

    prometheus_client has no public API for a labelled metric's sample names before its first
    observation, so this reads the registry's name index and each metric's label names.
    """
    out: dict[str, set[str]] = {}
    for collector, names in registry._collector_to_names.items():
        labels = set(getattr(collector, "_labelnames", ()))
        for name in names:
            out[name] = labels | ({"le"} if name.endswith("_bucket") else set())
    return out


def test_every_panel_queries_an_exported_metric(tmp_path: Path) -> None:
    h = Herald(Settings(home=tmp_path, database_url="memory://"))
    metrics = exported(h.metrics.registry)
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    used: set[str] = set()
    for expr in exprs:
        names = METRIC.findall(expr)
        assert names, f"no Herald metric in {expr!r}"
        for name in names:
            assert name in metrics, f"{name} (in {expr!r}) is not exported by Herald"
            used.add(name)
            for group in BY.findall(expr):
                for label in (s.strip() for s in group.split(",")):
                    assert label in metrics[name], f"{name} has no label {label!r} ({expr!r})"
    # the panels cover the backbone, serving, cost, deployments and guardrails
    for needed in ("herald_events_appended_total", "herald:time_to_first_token_seconds_bucket",
                   "herald_request_cost_usd_total", "herald_deployment_traffic_weight",
                   "herald_guardrail_triggers_total", "herald_sensor_lag_events"):  # fmt: skip
        assert needed in used
