"""``herald monitors list|evaluate|feedback`` and ``herald approvals list|grant|deny``:
monitoring rules, user feedback and human approvals on a running Herald (``HERALD_URL``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from herald.cli.common import APPROVAL, JsonOpt, call, client, err, out, print_json, resolve_id
from herald.cli.tables import Col, print_table, when

app = typer.Typer(help="Monitoring rules, their outcomes and user feedback.", no_args_is_help=True)
approvals_app = typer.Typer(help="Grant or deny approval requests.", no_args_is_help=True)


def _request(method: str, path: str, **kw: Any) -> Any:
    with client() as c:
        return call(c._request, method, path, **kw)


_json = print_json


@app.command("list")
def list_monitors(as_json: JsonOpt = False) -> None:
    """Rules and the outcome of their latest evaluation."""
    data = _request("GET", "/v1/monitors")
    if as_json:
        _json(data)
        return
    cols = [
        Col("rule", copy=True),
        Col("metric"),
        Col("cmp", min=3),
        Col("threshold", min=5),
        Col("window s", min=4, hide=2),
        Col("cooldown s", min=4, hide=1),
        Col("emits"),
    ]
    rules = [
        [
            r["name"],
            r["metric"],
            r["comparison"],
            str(r["threshold"]),
            f"{r['window']:.0f}",
            f"{r['cooldown']:.0f}",
            r["emits"],
        ]
        for r in data["data"]
    ]
    print_table(out, err, cols, rules)
    if data["outcomes"]:
        outcomes = [
            [
                row["rule"],
                row["model"],
                "—" if row["value"] is None else f"{row['value']:.4g}",
                row["status"],
            ]
            for row in data["outcomes"]
        ]
        cols = [Col("rule", copy=True), Col("model", copy=True), Col("value"), Col("status")]
        print_table(out, err, cols, outcomes)


@app.command("evaluate")
def evaluate(
    rules: Annotated[list[str] | None, typer.Argument(help="Rule names (default all).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate the rules now (publishes monitors.evaluate)."""
    data = _request("POST", "/v1/monitors/evaluate", json={"rules": rules or []})
    _json(data) if as_json else out.print(f"published {data['event']['id']}")


@app.command("feedback")
def feedback(
    response_id: str,
    up: Annotated[bool, typer.Option("--up/--down", help="Thumbs up or down.")] = True,
    score: Annotated[float | None, typer.Option(help="Score in [0, 1] instead.")] = None,
    comment: str = "",
    as_json: JsonOpt = False,
) -> None:
    """Rate a served response."""
    body: dict[str, Any] = {"response_id": response_id, "comment": comment}
    body |= {"score": score} if score is not None else {"thumbs": "up" if up else "down"}
    data = _request("POST", "/v1/feedback", json=body)
    _json(data) if as_json else out.print(f"recorded {data['id']} (score {data['score']})")


@approvals_app.command("list")
def list_approvals(as_json: JsonOpt = False) -> None:
    """Pending approval requests."""
    data = _request("GET", "/v1/approvals")["data"]
    if as_json:
        _json(data)
        return
    cols = [
        Col("id", copy=True),  # whole; a unique prefix also works with grant and deny
        Col("action", hide=2),
        Col("reason", lines=3, min=20),
        Col("time", hide=1),
    ]
    rows = [
        [e["id"], e["data"]["action_type"], e["data"].get("reason", ""), when(e["time"])]
        for e in data
    ]
    print_table(out, err, cols, rows)


def _decide(verb: str, approval_id: str, comment: str, by: str, as_json: bool) -> None:
    with client() as c:
        approval_id = resolve_id(c, APPROVAL, approval_id)
    body = {"comment": comment, "by": by}
    data = _request("POST", f"/v1/approvals/{approval_id}/{verb}", json=body)
    done = {"grant": "granted", "deny": "denied"}.get(verb, f"{verb}ed")  # not "denyed"
    _json(data) if as_json else out.print(f"{done} {approval_id}: {data['event']['id']}")


@approvals_app.command("grant")
def grant(approval_id: str, comment: str = "", by: str = "cli", as_json: JsonOpt = False) -> None:
    """Grant an approval request (its action is then emitted); a unique id prefix will do."""
    _decide("grant", approval_id, comment, by, as_json)


@approvals_app.command("deny")
def deny(approval_id: str, comment: str = "", by: str = "cli", as_json: JsonOpt = False) -> None:
    """Deny an approval request; a unique id prefix will do."""
    _decide("deny", approval_id, comment, by, as_json)
