"""Collapse a flow graph's progress messages: one node per job and progress type.

A job reports ``job.progressed`` on every ``ctx.progress`` call, and a fine-tune also emits
``training.progressed`` every step; drawn one node per message, the demo's flow is a column of a
hundred progress nodes that hides the steps that matter. ``GET /v1/flows/{id}?progress=collapsed``
(what the dashboard asks for) replaces the ``*.progressed`` messages a job reported or produced
with one ``kind: "progress"`` node per job and type::

    {"id": "progress:<job id>:job.progressed", "kind": "progress", "type": "job.progressed",
     "job": "job:<job id>", "count": 100, "progress": 1.0, "message": "step 100/100",
     "time": <first>, "last_time": <last>, "last_id": <last message id>, "data": <its payload>}

Edges to or from a collapsed message lead to its node instead, once each. Progress messages that
no job of the flow reported stay as they are; so does the whole graph without the parameter.
"""

from __future__ import annotations

from typing import Any

PROGRESS_SUFFIX = ".progressed"
_OWNED = ("reported", "produced")  # edge kinds from a job node to the messages it sent


def collapse_progress(graph: dict[str, Any]) -> dict[str, Any]:
    """The graph with each job's ``*.progressed`` messages folded into one node per type."""
    owner = {
        e["to"]: e["from"]
        for e in graph["edges"]
        if e["kind"] in _OWNED and str(e["from"]).startswith("job:")
    }
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    into: dict[str, str] = {}  # collapsed message id -> its progress node id
    nodes: list[dict[str, Any]] = []
    for n in graph["nodes"]:  # in log order: the last one seen is the newest
        job = owner.get(n["id"])
        if n["kind"] != "message" or job is None or not n["type"].endswith(PROGRESS_SUFFIX):
            nodes.append(n)
            continue
        group = groups.get((job, n["type"]))
        if group is None:
            group = groups[(job, n["type"])] = {
                "id": f"progress:{job.removeprefix('job:')}:{n['type']}",
                "kind": "progress",
                "type": n["type"],
                "job": job,
                "count": 0,
                "progress": None,
                "message": None,
                "time": n["time"],
            }
            nodes.append(group)  # where the first one was
        data = n.get("data") or {}
        group["count"] += 1
        if isinstance(data, dict):
            if data.get("progress") is not None:
                group["progress"] = data["progress"]
            if data.get("message") is not None:
                group["message"] = data["message"]
        group.update(
            subject=n.get("subject"),
            source=n.get("source"),
            last_time=n["time"],
            last_id=n["id"],
            seq=n.get("seq"),
            data=data,
        )
        into[n["id"]] = group["id"]
    edges: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for e in graph["edges"]:
        src, dst = into.get(e["from"], e["from"]), into.get(e["to"], e["to"])
        key = (src, dst, e["kind"])
        if src == dst or key in seen:
            continue
        seen.add(key)
        edges.append({**e, "from": src, "to": dst})
    return {**graph, "nodes": nodes, "edges": edges}
