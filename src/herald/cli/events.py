"""``herald emit|events|flow|catalog``: publish messages, follow them, trace a flow."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from herald.cli.common import (
    FLOW,
    JsonOpt,
    call,
    client,
    err,
    fail,
    out,
    print_json,
    resolve_id,
)
from herald.cli.tables import Col, cut_words, print_table, width

if TYPE_CHECKING:
    pass

from herald.cli.app import app

dump = print_json


# messages ---------------------------------------------------------------------------------------
@app.command()
def emit(
    type_name: Annotated[
        str, typer.Argument(metavar="TYPE", help="Message type, e.g. acme.order.placed")
    ],
    data: Annotated[str | None, typer.Option("--data", "-d", help="Payload as JSON.")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Payload from a JSON or YAML file ('-' = stdin)."),
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", "-s")] = None,
    correlation_id: Annotated[str | None, typer.Option("--correlation-id")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish a message; prints its id and correlation id."""
    if data is not None and file is not None:
        fail("give either --data or --file, not both")
    payload: Any = {}
    if data is not None:
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            fail(f"--data is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})")
    elif file is not None:
        payload = _read_payload(file)
    if not isinstance(payload, dict):
        fail(f"the payload must be a JSON object, got {type(payload).__name__}")
    env = call(client().emit, type_name, payload, subject=subject, correlationid=correlation_id)
    if as_json:
        dump(env.model_dump(mode="json"))
    else:
        out.print(
            f"[green]published[/] {env.type} id={env.id} seq={env.seq} correlationid={env.correlationid}"
        )


def _read_payload(file: Path) -> Any:
    import yaml

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            fail(f"{file} is neither valid JSON nor YAML: {exc}")


def _event_line(e: Any) -> str:
    """``seq time type [subject] data``; the data gives way (after a whole JSON token, with
    ``…``) so the line fits the terminal."""
    data = json.dumps(e.data, separators=(",", ":"))
    subj = f" [{e.subject}]" if e.subject else ""
    head = f"{e.seq:>6} {e.time:%H:%M:%S.%f}"[:-3] + f" {e.type}{subj} "
    data = cut_words(data, max(20, width() - len(head)))
    return (
        f"[dim]{e.seq:>6}[/] {e.time:%H:%M:%S.%f}"[:-3]
        + f" [bold]{escape(e.type)}[/]{escape(subj)} {escape(data)}"
    )


@app.command()
def events(
    type_name: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="Filter by type (repeatable).")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", "-s")] = None,
    correlation_id: Annotated[str | None, typer.Option("--correlation-id")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new messages.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show recent messages (newest last); --follow streams new ones."""
    c = client()
    found = call(
        c.messages,
        type=type_name,
        subject=subject,
        correlationid=correlation_id,
        limit=limit,
        order="desc",
    )
    for e in reversed(found):
        if as_json:
            print(json.dumps(e.model_dump(mode="json")))
        else:
            out.print(_event_line(e), highlight=False)
    if not follow:
        return
    try:
        for e in call(lambda: list_stream(c, type_name, subject, correlation_id)):
            if as_json:
                print(json.dumps(e.model_dump(mode="json")), flush=True)
            else:
                out.print(_event_line(e), highlight=False)
    except KeyboardInterrupt:
        pass


def list_stream(
    c: Any, types: list[str] | None, subject: str | None, correlation: str | None
) -> Any:
    return c.stream(type=types, subject=subject, correlationid=correlation)


@app.command()
def flow(
    correlation_id: Annotated[
        str,
        typer.Argument(
            help="Correlation id (or any message id of a root); a unique prefix of one will do."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show a flow's causal tree: messages, the sensors' outputs and jobs."""
    c = client()
    correlation_id = resolve_id(c, FLOW, correlation_id)
    # the tree folds each job's progress messages into one line; --json keeps every message
    graph = call(c.flow, correlation_id, progress="all" if as_json else "collapsed")
    if as_json:
        dump(graph)
        return
    nodes = {n["id"]: n for n in graph["nodes"]}
    children: dict[str, list[str]] = {}
    has_parent: set[str] = set()
    for e in graph["edges"]:
        children.setdefault(e["from"], []).append(e["to"])
        has_parent.add(e["to"])
    tree = Tree(f"[bold]flow {correlation_id}[/] ({len(nodes)} nodes)")

    def label(n: dict[str, Any]) -> str:
        if n["kind"] == "progress":
            last = f" — {escape(str(n['message']))}" if n.get("message") else ""
            return f"[dim]{escape(n['type'])} x{n['count']}{last}[/]"
        if n["kind"] == "job":
            return f"[magenta]job[/] {n['type']} [{n['status']}] attempt {n['attempt']} ({n['id'][4:]})"
        return f"[cyan]{escape(n['type'])}[/] {escape(n.get('subject') or '')} [dim]{n['id']}[/]"

    def add(branch: Tree, node_id: str) -> None:
        # a chain (one child each) continues on the same level; only forks indent, so a
        # long lineage (train → … → rollout, 100+ steps) stays readable and is never cut
        while True:
            sub = branch.add(label(nodes[node_id]))
            kids = children.get(node_id, [])
            if len(kids) != 1:
                break
            node_id = kids[0]
        for child in kids:
            add(sub, child)

    for node_id in nodes:
        if node_id not in has_parent:
            add(tree, node_id)
    out.print(tree)


@app.command()
def catalog(
    type_name: Annotated[
        str | None, typer.Argument(metavar="[TYPE]", help="Show one type's schema.")
    ] = None,
    asyncapi: Annotated[
        bool, typer.Option("--asyncapi", help="Print the AsyncAPI 3 document.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List message types (or show one type's JSON Schema)."""
    c = client()
    if asyncapi:
        dump(call(c._request, "GET", "/v1/catalog/asyncapi.json"))
        return
    if type_name:
        dump(call(c._request, "GET", f"/v1/catalog/{type_name}"))
        return
    data = call(c.catalog)
    if as_json:
        dump(data)
        return
    rows = [
        [item["type"], str(item["version"]), (item["description"] or "").split("\n")[0]]
        for item in data["types"]
    ]
    print_table(
        out, err, [Col("type", copy=True), Col("version"), Col("description", min=20)], rows
    )
