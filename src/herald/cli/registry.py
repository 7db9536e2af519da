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
from rich.markup import escape

from herald.cli.common import (
    RUN,
    AllOpt,
    CursorOpt,
    JsonOpt,
    LimitOpt,
    err,
    fetch_list,
    out,
    resolve_id,
    resolve_ids,
)
from herald.cli.common import call as _call
from herald.cli.common import client as _client
from herald.cli.common import print_json as _print_json
from herald.cli.tables import Col, cut_words, print_fields, print_table, when

models_app = typer.Typer(
    help="Registered models: versions, aliases, cards, promotion and archiving.",
    no_args_is_help=True,
)
runs_app = typer.Typer(help="Experiment runs: params, metrics, comparisons.", no_args_is_help=True)
datasets_app = typer.Typer(help="Register and inspect data set versions.", no_args_is_help=True)
app = models_app  # the registry capability's ("models", "herald.cli.registry") CLI entry


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
    cols = [
        Col("name", copy=True),
        Col("latest", min=3),
        Col("versions", min=3, hide=2),
        Col("kind", min=4, hide=3),
        Col("aliases", min=12),
        Col("base model", hide=1),
        Col("updated", hide=4),
    ]
    table = []
    for m in rows:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m["aliases"].items()))
        table.append(
            [
                m["name"],
                str(m["latest_version"]),
                str(m["versions"]),
                m["kind"],
                aliases or "—",
                m.get("base_model") or "—",
                when(m.get("updated_at")),
            ]
        )
    print_table(out, err, cols, table)
    return None


def _show_version(v: dict[str, Any]) -> None:
    fields: list[tuple[str, Any]] = []
    for key in ("uri", "status", "kind", "aliases", "artifact_uri", "base_model", "dataset"):
        value = v.get(key)
        fields.append((key, ", ".join(value) if isinstance(value, list) else _fmt(value)))
    fields.append(("run / job", f"{_fmt(v.get('run_id'))} / {_fmt(v.get('job_id'))}"))
    fields.append(("metrics", _kv({k: _fmt(x) for k, x in v.get("metrics", {}).items()})))
    fields.append(("tags", _kv(v.get("tags", {}))))
    fields.append(("created", when(v.get("created_at"))))
    causes = {k: x for k, x in v.get("lineage", {}).items() if k.endswith(("event_id", "id"))}
    if causes:
        fields.append(("lineage", _kv(causes)))
    print_fields(out, fields)


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
        _print_versions(data["versions"])
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
    _print_versions(rows)
    return None


def _print_versions(versions: list[dict[str, Any]]) -> None:
    cols = [
        Col("version", copy=True),
        Col("status", min=6, hide=3),
        Col("kind", min=4, hide=2),
        Col("aliases", min=12),
        Col("metrics", lines=3, min=16),
        Col("run", copy=True, hide=1),
        Col("created", hide=4),
    ]
    rows = [
        [
            str(v["version"]),
            v["status"],
            v["kind"],
            ", ".join(v["aliases"]) or "—",
            _kv({k: _fmt(x) for k, x in v["metrics"].items()}),
            v.get("run_id") or "—",
            when(v["created_at"]),
        ]
        for v in versions
    ]
    print_table(out, err, cols, rows)


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
    cols = [
        Col("time"),
        Col("alias", copy=True),
        Col("action", min=6),
        Col("version", min=3),
        Col("previous", min=3, hide=2),
        Col("reason", lines=3, min=20),
        Col("actor", hide=1),
    ]
    table = [
        [
            when(r["time"]),
            r["alias"],
            r["action"],
            _fmt(r["version"]),
            _fmt(r["previous_version"]),
            r["reason"] or "—",
            r["actor"] or "—",
        ]
        for r in rows
    ]
    print_table(out, err, cols, table)
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
    cols = [
        Col("id", copy=True),  # whole; a unique prefix also works with show/metrics/compare
        Col("name", copy=True),
        Col("status", min=6, hide=4),
        Col("job", copy=True, hide=1),
        Col("last metrics", min=16),
        Col("models", hide=2),
        Col("created", hide=3),
    ]
    table = [
        [
            r["id"],
            r["name"],
            r["status"],
            r.get("job_id") or "—",
            _kv({k: _fmt(v) for k, v in list(r["metrics"].items())[:4]}),
            ", ".join(r["models"]) or "—",
            when(r["created_at"]),
        ]
        for r in rows
    ]
    print_table(out, err, cols, table)
    return None


def _run_id(c: Any, run_id: str) -> str:
    return resolve_id(c, RUN, run_id)


@runs_app.command("show")
def runs_show(run_id: str, json_out: JsonOpt = False) -> None:
    """Show a run: params, last metric values, artifacts, models produced (a unique id prefix
    will do)."""
    c = _client()
    r = _call(c.run, _run_id(c, run_id))
    if json_out:
        return _print_json(r)
    out.print(f"[bold]{r['id']}[/] {r['name']} — {r['status']} (job {r.get('job_id') or '—'})")
    reason = (r.get("tags") or {}).get("error")
    if reason:  # why a failed run failed (e.g. its in-training evaluation), whole
        out.print(f"[red]error:[/] {escape(str(reason))}", highlight=False, soft_wrap=True)
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
    """Metric series of a run (step, value); a unique run id prefix will do."""
    c = _client()
    series = _call(c.run_metrics, _run_id(c, run_id), key)
    if json_out:
        return _print_json(series)
    keys = sorted(series)
    steps = sorted({p["step"] for k in keys for p in series[k]})
    values = {(k, p["step"]): p["value"] for k in keys for p in series[k]}
    rows = [[str(s), *(_fmt(values.get((k, s))) for k in keys)] for s in steps]
    print_table(out, err, [Col("step", min=4), *(Col(k, min=6) for k in keys)], rows)
    return None


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.")],
    json_out: JsonOpt = False,
) -> None:
    """Params that differ and each metric's last/min per run, side by side (unique id
    prefixes will do). Columns are numbered; the legend above them gives each whole run id."""
    c = _client()
    data = _call(c.compare_runs, resolve_ids(c, RUN, run_ids))
    if json_out:
        return _print_json(data)
    ids = [r["id"] for r in data["runs"]]
    for n, i in enumerate(ids, 1):
        out.print(f"#{n}  {i}", highlight=False, soft_wrap=True)
    heads = [Col(f"#{n}", min=6) for n in range(1, len(ids) + 1)]
    params = [
        [k, *(_fmt(by_run.get(i)) for i in ids)] for k, by_run in data["params"]["differ"].items()
    ]
    print_table(out, err, [Col("param", copy=True), *heads], params, title="params that differ")
    metrics = [
        [
            k,
            *(
                f"{_fmt(by_run[i]['last'])} / {_fmt(by_run[i]['min'])}" if i in by_run else "—"
                for i in ids
            ),
        ]
        for k, by_run in data["metrics"].items()
    ]
    print_table(out, err, [Col("metric", copy=True), *heads], metrics, title="metrics (last / min)")
    return None


# data sets ------------------------------------------------------------------------------------
@datasets_app.command("list")
def datasets_list(json_out: JsonOpt = False) -> None:
    """List data sets (latest version of each)."""
    rows = _call(_client().datasets)
    if json_out:
        return _print_json(rows)
    cols = [
        Col("name", copy=True),
        Col("version", min=3),
        Col("rows", min=4),
        Col("splits", hide=3),
        Col("format", min=4, hide=2),
        Col("fingerprint", hide=1),  # 12 characters; --json has it whole
        Col("created", hide=4),
    ]
    table = [
        [
            d["name"],
            str(d["version"]),
            str(d["rows"]),
            _kv(d["splits"]),
            d["format"],
            d["fingerprint"][:12],
            when(d["created_at"]),
        ]
        for d in rows
    ]
    print_table(out, err, cols, table)
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
    keys = ("uri", "rows", "format", "fingerprint", "artifact_uri", "source", "description")
    fields: list[tuple[str, Any]] = [(key, _fmt(d.get(key))) for key in keys]
    fields.append(("splits", _kv(d["splits"])))
    fields.append(("pii", _kv(d["pii"])))
    fields.append(("stats", cut_words(json.dumps(d["stats"]), 200)))
    fields.append(("versions", ", ".join(str(v["version"]) for v in data["versions"])))
    print_fields(out, fields)
    return None
