"""``herald deploy …`` and ``herald keys …``: deployments and client API keys over HTTP.

Every command talks to a running Herald (``HERALD_URL``, ``HERALD_API_KEY``) through
:class:`herald.Client`. Deployment changes are published as messages (``deployment.requested``,
``deployment.traffic.changed``, ``deployment.rollback``, ``deployment.delete``) and applied by
the deployment sensors; ``--wait`` polls until the new revision is ready or failed.
``herald keys create`` prints the new key once: it is stored hashed.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.markup import escape

from herald.cli.common import KEY, JsonOpt, err, out, resolve_id
from herald.cli.common import call as _call
from herald.cli.common import client as _client
from herald.cli.common import fail as _fail
from herald.cli.common import print_json as _print_json
from herald.cli.tables import Col, print_table, when
from herald.errors import HeraldError

app = typer.Typer(
    help="Deployments: public model names served by registry versions (canary, A/B, rollback).",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="Client API keys with scopes and rate limits (admin only).", no_args_is_help=True
)

WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        help="Seconds to wait for the new revision to be ready or failed (0: do not wait).",
    ),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the message).")]


def parse_weights(text: str, limit: float | None = 100.0) -> dict[str, float]:
    """``models:/x/1=90,models:/x/2=10`` → ``{"models:/x/1": 90.0, "models:/x/2": 10.0}``
    (values within 0..``limit``; ``limit=None``: any number)."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.rpartition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{part!r} is not TARGET=WEIGHT (e.g. models:/x/2=10)")
        try:
            weight = float(value)
        except ValueError:
            raise typer.BadParameter(
                f"weight of {key.strip()!r} is not a number: {value!r}"
            ) from None
        if limit is not None and not 0 <= weight <= limit:
            raise typer.BadParameter(f"weight of {key.strip()!r} must be within 0..{limit:g}")
        if key.strip() in weights:
            raise typer.BadParameter(f"{key.strip()!r} is listed twice")
        weights[key.strip()] = weight
    if not weights:
        raise typer.BadParameter("give at least one TARGET=WEIGHT")
    return weights


def _revision(client: Any, name: str) -> int:
    try:
        return int(client.deployment(name)["revision"])
    except HeraldError as exc:
        if getattr(exc, "status", None) == 404:
            return 0
        _fail(exc.message)


def _wait(client: Any, name: str, after: int, timeout: float, gone: bool = False) -> None:
    """Poll until ``name`` has a revision above ``after`` that is ready/failed (or is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            dep = client.deployment(name)
        except HeraldError as exc:
            if getattr(exc, "status", None) != 404:
                _fail(exc.message)
            dep = None
        if gone and dep is None:
            out.print(f"deployment {name} deleted")
            return
        if not gone and dep is not None and dep["revision"] > after:
            if dep["status"] == "failed":
                _fail(f"deployment {name} revision {dep['revision']} failed: {dep['error']}")
            if dep["status"] == "ready":
                out.print(f"deployment {name} revision {dep['revision']} ready")
                return
        if time.monotonic() > deadline:
            _fail(f"deployment {name} did not settle within {timeout:g}s (see herald deploy show)")
        time.sleep(0.2)


def _requested(result: dict[str, Any], what: str) -> None:
    out.print(f"{what} requested (message {result['message_id']})", highlight=False)


# deployments -----------------------------------------------------------------------------------
@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Public model name clients send.")],
    target: Annotated[
        str, typer.Option("--target", "-t", help="Stable version: models:/x@champion or /x/3.")
    ],
    canary: Annotated[
        str | None, typer.Option("--canary", help="A second version taking --weight %.")
    ] = None,
    weight: Annotated[
        float, typer.Option("--weight", "-w", min=0, max=100, help="Canary traffic share (%).")
    ] = 10.0,
    replicas: Annotated[int, typer.Option("--replicas", "-r", min=1, max=16)] = 1,
    backend: Annotated[
        str | None, typer.Option("--backend", help="Override the backend (e.g. transformers).")
    ] = None,
    follow_aliases: Annotated[
        bool,
        typer.Option("--follow-aliases/--no-follow-aliases", help="Redeploy when an alias moves."),
    ] = True,
    canary_rollback: Annotated[
        bool,
        typer.Option(
            "--canary-rollback/--no-canary-rollback",
            help="Roll the canary back when its evaluation regresses against the stable version.",
        ),
    ] = True,
    min_score: Annotated[
        list[str] | None,
        typer.Option("--min-score", help="METRIC=VALUE the canary must reach (repeatable)."),
    ] = None,
    reason: ReasonOpt = "",
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Create or replace deployment NAME (blue-green: traffic moves once it is healthy)."""
    if canary is None and weight != 10.0:
        _fail("--weight is the canary's share: give --canary too")

    def one(model: str, share: float) -> dict[str, Any]:
        t: dict[str, Any] = {"model": model, "weight": share, "replicas": replicas}
        if backend is not None:
            t["backend"] = backend
        return t

    targets = [one(target, 100.0 - weight if canary else 100.0)]
    if canary is not None:
        if canary == target:
            _fail("--canary must differ from --target")
        targets.append(one(canary, weight))
    policy: dict[str, Any] = {"enabled": canary_rollback}
    if min_score:
        policy["min_scores"] = parse_weights(",".join(min_score), limit=None)
    client = _client()
    before = _revision(client, name) if wait else 0
    result = _call(
        client.deploy,
        name,
        targets,
        follow_aliases=follow_aliases,
        canary=policy,
        reason=reason,
    )
    if json_out:
        _print_json(result)
    else:
        _requested(result, f"deployment {name}")
    if wait:
        _wait(client, name, before, wait)


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """List deployments with their targets, weights and status."""
    rows = _call(_client().deployments)
    if json_out:
        return _print_json(rows)
    if not rows:
        out.print("no deployments yet (herald deploy create NAME --target models:/x@champion)")
        return None
    cols = [
        Col("name", copy=True),
        Col("revision", min=3, hide=2),
        Col("status", min=6),
        Col("targets (weight %)", lines=4, min=16),
        Col("updated", hide=1),
    ]
    table = []
    for d in rows:
        targets = ", ".join(
            f"{x.get('version') or x['model']} {x['weight']:g}%" for x in d["targets"]
        )
        table.append([d["name"], str(d["revision"]), d["status"], targets, when(d["updated_at"])])
    print_table(out, err, cols, table)
    return None


@app.command("show")
def show(name: str, json_out: JsonOpt = False) -> None:
    """One deployment: desired targets, status and the live replicas of this server."""
    d = _call(_client().deployment, name)
    if json_out:
        return _print_json(d)
    out.print(f"[bold]{escape(d['name'])}[/] revision {d['revision']} — {d['status']}")
    if d.get("error"):
        out.print(f"[red]error:[/] {escape(d['error'])}", highlight=False)
    if d.get("reason"):
        out.print(f"reason: {escape(d['reason'])}", highlight=False)
    policy = d.get("canary") or {}
    if policy:
        floors = ", ".join(f"{k}≥{v:g}" for k, v in (policy.get("min_scores") or {}).items())
        out.print(
            "canary rollback: "
            + ("on" if policy.get("enabled") else "off")
            + (
                " (vs stable)"
                if policy.get("enabled") and policy.get("compare_with_stable")
                else ""
            )
            + (f", minimum {floors}" if floors else ""),
            highlight=False,
        )
    targets = [
        [x["model"], x.get("version") or "—", f"{x['weight']:g}", str(x["replicas"])]
        for x in d["targets"]
    ]
    cols = [
        Col("target", copy=True),
        Col("version", copy=True),
        Col("weight %", min=3),
        Col("replicas", min=3),
    ]
    print_table(out, err, cols, targets)
    live = d.get("live") or []
    if live:
        replicas = [
            [
                g["version"],
                f"{g['weight']:g}",
                str(r.get("index", "")),
                str(r.get("healthy", "")),
                str(r.get("outstanding", "")),
            ]
            for g in live
            for r in g["replicas"]
        ]
        cols = [
            Col("live version", copy=True),
            Col("weight %", min=3),
            Col("replica", min=3),
            Col("healthy", min=5),
            Col("outstanding", min=3),
        ]
        print_table(out, err, cols, replicas)
    return None


@app.command("traffic")
def traffic(
    name: str,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="TARGET=WEIGHT,... (target URI or resolved version), e.g. "
            "models:/x/1=90,models:/x/2=10",
        ),
    ] = None,
    add: Annotated[
        str | None,
        typer.Option(
            "--add",
            help="Targets to add with their weight, e.g. models:/x/3=10 (a canary; replicas "
            "and backend as in the deployment's first target).",
        ),
    ] = None,
    reason: ReasonOpt = "",
    wait: WaitOpt = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Change the traffic split (loaded replicas are reused: nothing reloads) or add a canary."""
    parsed = parse_weights(weights) if weights else {}
    added = parse_weights(add) if add else {}
    if not parsed and not added:
        _fail("give --weights TARGET=WEIGHT,... and/or --add TARGET=WEIGHT")
    client = _client()
    new: list[dict[str, Any]] = []
    if added:
        first = _call(client.deployment, name)["targets"][0]
        for model, w in added.items():
            t: dict[str, Any] = {"model": model, "weight": w, "replicas": first["replicas"]}
            if first.get("backend"):
                t["backend"] = first["backend"]
            new.append(t)
    before = _revision(client, name) if wait else 0
    result = _call(client.set_traffic, name, parsed, add=new, reason=reason)
    if json_out:
        _print_json(result)
    else:
        _requested(result, f"traffic change of {name}")
    if wait:
        _wait(client, name, before, wait)


@app.command("rollback")
def rollback(name: str, reason: ReasonOpt = "", wait: WaitOpt = 0.0) -> None:
    """Go back to the previous revision's targets and weights."""
    client = _client()
    before = _revision(client, name) if wait else 0
    _requested(_call(client.rollback_deployment, name, reason=reason), f"rollback of {name}")
    if wait:
        _wait(client, name, before, wait)


@app.command("delete")
def delete(name: str, wait: WaitOpt = 0.0) -> None:
    """Stop serving NAME (replicas drain, then unload)."""
    client = _client()
    _requested(_call(client.delete_deployment, name), f"deletion of {name}")
    if wait:
        _wait(client, name, 0, wait, gone=True)


# keys ------------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who the key is for (e.g. a team or service).")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help="inference, batch or admin (repeatable)."),
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", min=0.001, help="Requests per minute (token bucket).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a client key; it is printed once (only its hash is stored)."""
    rec = _call(_client().create_api_key, name, scope or ["inference"], rate)
    if json_out:
        return _print_json(rec)
    out.print(
        f"key {rec['id']} for {escape(rec['name'])} (scopes {', '.join(rec['scopes'])}, "
        f"{rec['rate_per_minute']:g}/min) — store it now, it is not shown again:",
        highlight=False,
    )
    print(rec["key"])
    return None


@keys_app.command("list")
def keys_list(json_out: JsonOpt = False) -> None:
    """List client keys (revoked ones too; never the secrets)."""
    rows = _call(_client().api_keys)
    if json_out:
        return _print_json(rows)
    if not rows:
        out.print("no client keys (herald keys create NAME --scope inference)")
        return None
    cols = [
        Col("id", copy=True),  # whole; a unique prefix also works with revoke
        Col("name", copy=True),
        Col("scopes", min=9),
        Col("rate/min", min=4, hide=1),
        Col("created", hide=2),
        Col("revoked", hide=3),
    ]
    table = [
        [
            k["id"],
            k["name"],
            ", ".join(k["scopes"]),
            f"{k['rate_per_minute']:g}",
            when(k["created_at"]),
            when(k["revoked_at"]),
        ]
        for k in rows
    ]
    print_table(out, err, cols, table)
    return None


@keys_app.command("revoke")
def keys_revoke(key_id: str, json_out: JsonOpt = False) -> None:
    """Revoke a client key (every process refuses it within seconds); a unique id prefix will
    do."""
    c = _client()
    rec = _call(c.revoke_api_key, resolve_id(c, KEY, key_id))
    if json_out:
        return _print_json(rec)
    out.print(f"key {rec['id']} ({escape(rec['name'])}) revoked at {rec['revoked_at']}")
    return None


__all__ = ["app", "keys_app", "parse_weights"]
