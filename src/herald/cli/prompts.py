"""``herald prompts``: register, list, show, promote and render versioned prompt templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape

from herald.cli.common import JsonOpt, err, out
from herald.cli.common import fail as _fail
from herald.cli.tables import Col, print_table
from herald.errors import HeraldError

app = typer.Typer(
    help="Prompt registry: versioned templates (prompts:/name/3, prompts:/name@production).",
    no_args_is_help=True,
)


def _req(method: str, path: str, **kw: Any) -> Any:
    from herald.client import Client

    try:
        c = Client()
    except HeraldError as exc:
        _fail(exc.message)
    try:
        return c._request(method, path, **kw)
    except HeraldError as exc:
        _fail(exc.message)
    finally:
        c.close()


def _seg(name: str) -> str:
    return quote(name, safe="")


def _vars(items: list[str] | None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            _fail(f"--var expects name=value, got {item!r}")
        result[key] = raw
    return result


@app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="Template file (Jinja2).")],
    variables: Annotated[
        list[str] | None, typer.Option("--variable", help="Declared variable (repeatable).")
    ] = None,
    description: Annotated[str, typer.Option(help="What the prompt is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Register the template in FILE as the next version of NAME."""
    try:
        template = file.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
    body: dict[str, Any] = {"name": name, "template": template, "description": description}
    if variables:
        body["variables"] = variables
    v = _req("POST", "/v1/prompts", json=body)
    if as_json:
        print(json.dumps(v))
        return
    out.print(f"registered {v['uri']} (variables: {', '.join(v['variables']) or 'none'})")


@app.command("list")
def list_prompts(as_json: JsonOpt = False) -> None:
    """The latest version of every prompt."""
    data = _req("GET", "/v1/prompts")["data"]
    if as_json:
        print(json.dumps(data))
        return
    cols = [
        Col("name", copy=True),
        Col("latest", min=3),
        Col("aliases", min=12),
        Col("variables", hide=1),
        Col("description", lines=3, min=20),
    ]
    rows = [
        [
            p["name"],
            str(p["version"]),
            ", ".join(p["aliases"]),
            ", ".join(p["variables"]),
            p["description"],
        ]
        for p in data
    ]
    print_table(out, err, cols, rows)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Prompt name.")], as_json: JsonOpt = False
) -> None:
    """All versions of a prompt, with aliases."""
    data = _req("GET", f"/v1/prompts/{_seg(name)}")["data"]
    if as_json:
        print(json.dumps(data))
        return
    for v in data:
        aliases = f" [{', '.join(v['aliases'])}]" if v["aliases"] else ""
        out.print(f"[bold]{v['uri']}[/]{escape(aliases)}  {v['created_at']}")
        out.print(escape(v["template"]), highlight=False)


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[int, typer.Argument(help="Version to point the alias at.")],
    alias: Annotated[str, typer.Option("--alias", "-a", help="Alias.")] = "production",
    as_json: JsonOpt = False,
) -> None:
    """Point an alias (default: production) at a version."""
    v = _req("POST", f"/v1/prompts/{_seg(name)}/aliases", json={"alias": alias, "version": version})
    if as_json:
        print(json.dumps(v))
        return
    prev = v.get("previous_version")
    out.print(
        f"prompts:/{name}@{alias} → version {v['version']}"
        + (f" (was {prev})" if prev is not None else "")
    )


@app.command("render")
def render(
    ref: Annotated[str, typer.Argument(help="prompts:/name/3, prompts:/name@alias or name.")],
    var: Annotated[list[str] | None, typer.Option("--var", help="name=value (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Render a prompt version with variables."""
    r = _req("POST", "/v1/prompts/render", json={"ref": ref, "variables": _vars(var)})
    if as_json:
        print(json.dumps(r))
        return
    print(r["text"])
