"""``herald models …``, ``herald runs …`` and ``herald datasets list|show``: the registry over HTTP.

Every command talks to a running Herald (``HERALD_URL``, ``HERALD_API_KEY``) through
:class:`herald.Client`; ``--json`` prints machine-readable output. ``datasets_app`` is shared:
``herald.cli.datasets`` adds ``register`` to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from herald.cli.common import AllOpt, CursorOpt, JsonOpt, LimitOpt, fetch_list, out
from herald.cli.common import call as _call
from herald.cli.common import client as _client
from herald.cli.common import print_json as _print_json

models_app = typer.Typer(
    help="Registered models: versions, aliases, cards, promotion and archiving.",
    no_args_is_help=True,
)
runs_app = typer.Typer(help="Experiment runs: params, metrics, comparisons.", no_args_is_help=True)
datasets_app = typer.Typer(help="Register and inspect data set versions.", no_args_is_help=True)
app = models_app  # CLI_GROUPS entry ("models", "herald.cli.registry")


def _kv(data: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items()) or "—"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "—" if v is None else str(v)


# models ---------------------------------------------------------------------------------------
@models_app.command("list")
def models_list(
    limit: LimitOpt = 100,
    cursor: CursorOpt = None,
    every_page: AllOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """List registered models by name with their latest version and aliases (paged)."""
    rows = fetch_list(
        _client(), "/v1/registry/models", limit=limit, cursor=cursor, every_page=every_page
    )
    if json_out:
        return _print_json(rows)
    if not rows:
        out.print("no models registered yet (a model.register message or a fine-tune adds one)")
        return None
    t = Table("name", "latest", "versions", "kind", "aliases", "base model", "updated")
    for m in rows:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m["aliases"].items()))
        t.add_row(
            m["name"],
            str(m["latest_version"]),
            str(m["versions"]),
            m["kind"],
            aliases or "—",
            m.get("base_model") or "—",
            str(m.get("updated_at") or "")[:19],
        )
    out.print(t)
    return None


def _show_version(v: dict[str, Any]) -> None:
    t = Table(show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    for key in ("uri", "status", "kind", "aliases", "artifact_uri", "base_model", "dataset"):
        value = v.get(key)
        t.add_row(key, ", ".join(value) if isinstance(value, list) else _fmt(value))
    t.add_row("run / job", f"{_fmt(v.get('run_id'))} / {_fmt(v.get('job_id'))}")
    t.add_row("metrics", _kv({k: _fmt(x) for k, x in v.get("metrics", {}).items()}))
    t.add_row("tags", _kv(v.get("tags", {})))
    t.add_row("created", str(v.get("created_at", ""))[:19])
    causes = {k: x for k, x in v.get("lineage", {}).items() if k.endswith(("event_id", "id"))}
    if causes:
        t.add_row("lineage", _kv(causes))
    out.print(t)


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME/VERSION, NAME@ALIAS or models:/… URI")],
    json_out: JsonOpt = False,
) -> None:
    """Show a model (all versions) or one version."""
    from herald.registry.models import parse_model_uri

    parsed = _call(parse_model_uri, ref)
    c = _client()
    if parsed.version is None and parsed.alias is None:
        data = _call(c.model, parsed.name)
        if json_out:
            return _print_json(data)
        aliases = ", ".join(f"{a}→{v}" for a, v in data["aliases"].items()) or "none"
        out.print(f"[bold]{data['name']}[/] — latest {data['latest_version']}; aliases: {aliases}")
        out.print(_versions_table(data["versions"]))
        return None
    version = _call(c.resolve_model, ref)
    if json_out:
        return _print_json(version)
    _show_version(version)
    return None


@models_app.command("versions")
def models_versions(
    name: Annotated[str, typer.Argument(help="Model name.")],
    limit: LimitOpt = 100,
    cursor: CursorOpt = None,
    every_page: AllOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """List a model's versions, newest first (one page; --cursor for the next, --all for all)."""
    from urllib.parse import quote

    path = f"/v1/registry/models/{quote(name, safe='')}/versions"
    rows = fetch_list(_client(), path, limit=limit, cursor=cursor, every_page=every_page)
    if json_out:
        return _print_json(rows)
    out.print(_versions_table(rows))
    return None


def _versions_table(versions: list[dict[str, Any]]) -> Table:
    t = Table("version", "status", "kind", "aliases", "metrics", "run", "created")
    for v in versions:
        t.add_row(
            str(v["version"]),
            v["status"],
            v["kind"],
            ", ".join(v["aliases"]) or "—",
            _kv({k: _fmt(x) for k, x in v["metrics"].items()}),
            v.get("run_id") or "—",
            str(v["created_at"])[:19],
        )
    return t


@models_app.command("resolve")
def models_resolve(
    uri: Annotated[str, typer.Argument(help="models:/name@alias, models:/name/3 or models:/name")],
    json_out: JsonOpt = False,
) -> None:
    """Resolve a model URI to a version and print its URI and artifact."""
    v = _call(_client().resolve_model, uri)
    if json_out:
        return _print_json(v)
    typer.echo(f"{v['uri']}\t{v['artifact_uri']}")
    return None


@models_app.command("promote")
def models_promote(
    name: str,
    version: int,
    alias: Annotated[str, typer.Option("--alias", "-a", help="Alias to point here.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why (kept in the alias history).")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Point ALIAS at NAME/VERSION (publishes model.promote)."""
    env = _call(_client().promote, name, version, alias, reason=reason)
    if json_out:
        return _print_json(env.model_dump(mode="json"))
    out.print(f"requested: {alias} → models:/{name}/{version} (message {env.id})")
    return None


@models_app.command("archive")
def models_archive(
    name: str,
    version: int,
    reason: Annotated[str, typer.Option(help="Why (kept in the alias history).")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Archive NAME/VERSION: it loses its aliases (publishes model.archive)."""
    env = _call(_client().archive, name, version, reason=reason)
    if json_out:
        return _print_json(env.model_dump(mode="json"))
    out.print(f"requested: archive models:/{name}/{version} (message {env.id})")
    return None


@models_app.command("card")
def models_card(
    ref: Annotated[str, typer.Argument(help="NAME/VERSION, NAME@ALIAS or models:/… URI")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Print (or write) the Hugging Face model card of a version."""
    c = _client()
    v = _call(c.resolve_model, ref)
    text = _call(c.model_card, v["name"], v["version"])
    if output is not None:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}")
    else:
        typer.echo(text)


@models_app.command("history")
def models_history(
    name: str,
    alias: Annotated[str | None, typer.Option("--alias", "-a")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Alias history of a model (append-only)."""
    rows = _call(_client().alias_history, name, alias)
    if json_out:
        return _print_json(rows)
    t = Table("time", "alias", "action", "version", "previous", "reason", "actor")
    for r in rows:
        t.add_row(
            str(r["time"])[:19],
            r["alias"],
            r["action"],
            _fmt(r["version"]),
            _fmt(r["previous_version"]),
            r["reason"] or "—",
            r["actor"] or "—",
        )
    out.print(t)
    return None


# runs -----------------------------------------------------------------------------------------
@runs_app.command("list")
def runs_list(
    name: Annotated[str | None, typer.Option(help="Only runs with this name.")] = None,
    status: Annotated[str | None, typer.Option(help="running/finished/failed/killed")] = None,
    job: Annotated[str | None, typer.Option("--job", help="Only runs of this job id.")] = None,
    limit: LimitOpt = 50,
    cursor: CursorOpt = None,
    every_page: AllOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """List experiment runs, newest first (one page; --cursor for the next, --all for all)."""
    rows = fetch_list(
        _client(),
        "/v1/runs",
        limit=limit,
        cursor=cursor,
        every_page=every_page,
        name=name,
        status=status,
        job_id=job,
    )
    if json_out:
        return _print_json(rows)
    t = Table("id", "name", "status", "job", "last metrics", "models", "created")
    for r in rows:
        t.add_row(
            r["id"],
            r["name"],
            r["status"],
            r.get("job_id") or "—",
            _kv({k: _fmt(v) for k, v in list(r["metrics"].items())[:4]}),
            ", ".join(r["models"]) or "—",
            str(r["created_at"])[:19],
        )
    out.print(t)
    return None


@runs_app.command("show")
def runs_show(run_id: str, json_out: JsonOpt = False) -> None:
    """Show a run: params, last metric values, artifacts, models produced."""
    r = _call(_client().run, run_id)
    if json_out:
        return _print_json(r)
    out.print(f"[bold]{r['id']}[/] {r['name']} — {r['status']} (job {r.get('job_id') or '—'})")
    out.print_json(json.dumps({"params": r["params"], "metrics": r["metrics"]}))
    for name, uri in r["artifacts"].items():
        out.print(f"artifact {name}: {uri}", highlight=False)
    for m in r["models"]:
        out.print(f"model: {m}", highlight=False)
    return None


@runs_app.command("metrics")
def runs_metrics(
    run_id: str,
    key: Annotated[list[str] | None, typer.Option("--key", "-k", help="Metric key(s).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Metric series of a run (step, value)."""
    series = _call(_client().run_metrics, run_id, key)
    if json_out:
        return _print_json(series)
    keys = sorted(series)
    steps = sorted({p["step"] for k in keys for p in series[k]})
    values = {(k, p["step"]): p["value"] for k in keys for p in series[k]}
    t = Table("step", *keys)
    for s in steps:
        t.add_row(str(s), *(_fmt(values.get((k, s))) for k in keys))
    out.print(t)
    return None


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    json_out: JsonOpt = False,
) -> None:
    """Params that differ and each metric's last/min per run, side by side."""
    data = _call(_client().compare_runs, run_ids)
    if json_out:
        return _print_json(data)
    ids = [r["id"] for r in data["runs"]]
    t = Table("", *ids, title="params that differ")
    for k, by_run in data["params"]["differ"].items():
        t.add_row(k, *(_fmt(by_run.get(i)) for i in ids))
    out.print(t)
    m = Table("metric", *ids, title="metrics (last / min)")
    for k, by_run in data["metrics"].items():
        m.add_row(
            k,
            *(
                f"{_fmt(by_run[i]['last'])} / {_fmt(by_run[i]['min'])}" if i in by_run else "—"
                for i in ids
            ),
        )
    out.print(m)
    return None


# data sets ------------------------------------------------------------------------------------
@datasets_app.command("list")
def datasets_list(json_out: JsonOpt = False) -> None:
    """List data sets (latest version of each)."""
    rows = _call(_client().datasets)
    if json_out:
        return _print_json(rows)
    t = Table("name", "version", "rows", "splits", "format", "fingerprint", "created")
    for d in rows:
        t.add_row(
            d["name"],
            str(d["version"]),
            str(d["rows"]),
            _kv(d["splits"]),
            d["format"],
            d["fingerprint"][:12],
            str(d["created_at"])[:19],
        )
    out.print(t)
    return None


@datasets_app.command("show")
def datasets_show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME/VERSION or datasets:/NAME/VERSION")],
    json_out: JsonOpt = False,
) -> None:
    """Show a data set version (latest unless a version is given) and its other versions."""
    from herald.registry.models import parse_dataset_uri

    name, version = _call(parse_dataset_uri, ref)
    c = _client()
    data = _call(c.dataset, name)
    d = data["latest"] if version is None else _call(c.dataset, name, version)
    if json_out:
        return _print_json(d if version is not None else data)
    t = Table(show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    for key in ("uri", "rows", "format", "fingerprint", "artifact_uri", "source", "description"):
        t.add_row(key, _fmt(d.get(key)))
    t.add_row("splits", _kv(d["splits"]))
    t.add_row("pii", _kv(d["pii"]))
    t.add_row("stats", json.dumps(d["stats"])[:200])
    t.add_row("versions", ", ".join(str(v["version"]) for v in data["versions"]))
    out.print(t)
    return None
