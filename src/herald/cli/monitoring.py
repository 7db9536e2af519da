"""``herald monitors list|evaluate|feedback`` and ``herald approvals list|grant|deny``:
monitoring rules, user feedback and human approvals on a running Herald (``HERALD_URL``)."""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from herald.errors import HeraldError

app = typer.Typer(help="Monitoring rules, their outcomes and user feedback.", no_args_is_help=True)
approvals_app = typer.Typer(help="Grant or deny approval requests.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def _request(method: str, path: str, **kw: Any) -> Any:
    from herald.client import Client

    try:
        with Client() as c:
            return c._request(method, path, **kw)
    except HeraldError as exc:
        _fail(exc.message)


def _json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


@app.command("list")
def list_monitors(as_json: JsonOpt = False) -> None:
    """Rules and the outcome of their latest evaluation."""
    data = _request("GET", "/v1/monitors")
    if as_json:
        _json(data)
        return
    t = Table("rule", "metric", "cmp", "threshold", "window s", "cooldown s", "emits")
    for r in data["data"]:
        t.add_row(
            r["name"],
            r["metric"],
            r["comparison"],
            str(r["threshold"]),
            f"{r['window']:.0f}",
            f"{r['cooldown']:.0f}",
            r["emits"],
        )
    out.print(t)
    if data["outcomes"]:
        o = Table("rule", "model", "value", "status")
        for row in data["outcomes"]:
            v = row["value"]
            o.add_row(row["rule"], row["model"], "—" if v is None else f"{v:.4g}", row["status"])
        out.print(o)


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
    t = Table("id", "action", "reason", "time")
    for e in data:
        t.add_row(e["id"], e["data"]["action_type"], e["data"].get("reason", ""), e["time"])
    out.print(t)


def _decide(verb: str, approval_id: str, comment: str, by: str, as_json: bool) -> None:
    data = _request(
        "POST", f"/v1/approvals/{approval_id}/{verb}", json={"comment": comment, "by": by}
    )
    done = {"grant": "granted", "deny": "denied"}.get(verb, f"{verb}ed")  # not "denyed"
    _json(data) if as_json else out.print(f"{done} {approval_id}: {data['event']['id']}")


@approvals_app.command("grant")
def grant(approval_id: str, comment: str = "", by: str = "cli", as_json: JsonOpt = False) -> None:
    """Grant an approval request (its action is then emitted)."""
    _decide("grant", approval_id, comment, by, as_json)


@approvals_app.command("deny")
def deny(approval_id: str, comment: str = "", by: str = "cli", as_json: JsonOpt = False) -> None:
    """Deny an approval request."""
    _decide("deny", approval_id, comment, by, as_json)
