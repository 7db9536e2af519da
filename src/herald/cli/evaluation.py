"""``herald eval run|list|show|compare|leaderboard``: the Omni-Evaluator from the terminal.

``run`` publishes ``evaluation.requested`` to a running Herald (``HERALD_URL``) and, with
``--wait``, follows it to the results table; ``--local`` runs the evaluation in this process
instead (no server needed; results go to the same store under ``HERALD_HOME``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.text import Text

from herald.cli.common import (
    EVALUATION,
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
from herald.cli.common import fail as _fail
from herald.cli.common import print_json as _print_json
from herald.cli.tables import Cell, Col, print_table, when
from herald.errors import HeraldError, NotFound

app = typer.Typer(
    help="Evaluate models: run suites, browse results, compare, leaderboards.", no_args_is_help=True
)


def _num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def print_results(ev: dict[str, Any]) -> None:
    """Metric, value, 95% CI, n, errors and threshold outcome of one evaluation."""
    title = f"{ev['suite']} · {ev['target']}"
    if ev.get("model_version") and ev["model_version"] != ev["target"]:
        title += f" ({ev['model_version']})"
    thresholds = ev.get("thresholds") or {}
    rows: list[list[Cell]] = []
    for name, m in ev.get("metrics", {}).items():
        ci = "—" if m.get("ci_low") is None else f"[{_num(m['ci_low'])}, {_num(m['ci_high'])}]"
        th = thresholds.get(name)
        mark: Cell = "—"
        if th:
            bound = " ".join(f"{k} {_num(th[k])}" for k in ("min", "max") if th.get(k) is not None)
            mark = Text(
                f"pass ({bound})" if th["passed"] else f"FAIL ({bound})",
                style="green" if th["passed"] else "red",
            )
        star = " *" if name == ev.get("primary_metric") else ""
        rows.append(
            [name + star, _num(m.get("value")), ci, _num(m.get("n")), _num(m.get("errors")), mark]
        )
    cols = [
        Col("metric", copy=True),
        Col("value", min=6),
        Col("95% CI", hide=2),
        Col("n", min=3, hide=1),
        Col("errors", min=3, hide=1),
        Col("threshold"),
    ]
    print_table(out, err, cols, rows, title=title)


def _summary(ev: dict[str, Any]) -> None:
    """The results table, then the line with the id a user types next."""
    print_results(ev)
    passed = ev.get("passed")
    verdict = "—" if passed is None else ("[green]passed[/]" if passed else "[red]failed[/]")
    out.print(
        f"evaluation {ev['id']}: {ev.get('done', 0)} items, {ev.get('failed_items', 0)} with "
        f"errors; thresholds {verdict}; samples: herald eval show {ev['id']} --samples",
        highlight=False,
        soft_wrap=True,  # the id stays whole on one line
    )


@app.command("run")
def run(
    target: Annotated[
        str,
        typer.Option(
            help="models:/name@alias, checkpoint folder, served "
            "name, deployment:NAME or http(s)://…/v1"
        ),
    ],
    suite: Annotated[str, typer.Option(help="suite YAML path or shipped suite name")],
    model: Annotated[str | None, typer.Option(help="model name at an endpoint target")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="first N samples only")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, max=256)] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow to the results")] = False,
    local: Annotated[bool, typer.Option("--local", help="run here, without a server")] = False,
    timeout: Annotated[float, typer.Option(help="--wait gives up after this many s")] = 3600.0,
    json_out: JsonOpt = False,
) -> None:
    """Evaluate TARGET on SUITE and print the results table with confidence intervals."""
    if local:
        ev = _call(_run_local, target, suite, model, limit, concurrency, json_out)
        return _print_json(ev) if json_out else _summary(ev)
    client = _client()
    body = {
        "target": target,
        "suite": suite,
        "model": model,
        "limit": limit,
        "concurrency": concurrency,
    }
    res = _call(
        client._request,
        "POST",
        "/v1/evaluations",
        json={k: v for k, v in body.items() if v is not None},
    )
    eid = res["evaluation_id"]
    if not wait:
        if json_out:
            return _print_json(res)
        out.print(
            f"requested evaluation [bold]{eid}[/] (event {res['event']['id']}); "
            f"follow with: herald eval show {eid}"
        )
        return None
    ev = _wait(client, eid, timeout, quiet=json_out)
    return _print_json(ev) if json_out else _summary(ev)


def _wait(client: Any, eid: str, timeout: float, *, quiet: bool) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    deadline = time.monotonic() + timeout
    with Progress(
        TextColumn("evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("eval", total=None)
        while time.monotonic() < deadline:
            try:
                ev: dict[str, Any] = client._request("GET", f"/v1/evaluations/{eid}")
            except NotFound:
                ev = {}
            except HeraldError as exc:
                _fail(exc.message)
            if ev:
                bar.update(task, total=ev.get("total") or None, completed=ev.get("done", 0))
                if ev["status"] == "completed":
                    return ev
                if ev["status"] == "failed":
                    _fail(f"evaluation {eid} failed: {ev.get('error')}")
            failed = _call(client.messages, type="evaluation.failed", subject=f"evaluations/{eid}")
            if failed and not ev:
                _fail(f"evaluation {eid} failed: {failed[-1].data.get('error')}")
            time.sleep(0.5)
    _fail(f"evaluation {eid} did not finish within {timeout:.0f} s (it may still be running)")


def _run_local(
    target: str,
    suite: str,
    model: str | None,
    limit: int | None,
    concurrency: int | None,
    quiet: bool,
) -> dict[str, Any]:
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from herald.evaluation.jobs import prepare
    from herald.evaluation.runner import EvaluationPlan, run_evaluation
    from herald.messages.envelope import new_id
    from herald.services import Services

    services = Services.from_environment()  # this process's settings; stores opened on use
    settings = services.settings
    s, spec, version, registry = prepare(target, suite, services, model=model, limit=limit)
    plan = EvaluationPlan(
        new_id().replace("-", ""),
        s,
        spec,
        concurrency=concurrency or s.concurrency,
        model_version=version,
    )
    with Progress(
        TextColumn(f"{s.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task("eval", total=None)

        def progress(done: int, total: int, errors: int) -> None:
            bar.update(task, total=total, completed=done)

        return asyncio.run(
            run_evaluation(
                plan,
                services.evaluations,
                settings=settings,
                registry=registry,
                progress=progress,
            )
        )


@app.command("list")
def list_(
    suite: Annotated[str | None, typer.Option(help="only this suite")] = None,
    target: Annotated[str | None, typer.Option(help="only this target")] = None,
    limit: LimitOpt = 50,
    cursor: CursorOpt = None,
    every_page: AllOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """List evaluations, newest first (one page; --cursor for the next, --all for all)."""
    rows = fetch_list(
        _client(),
        "/v1/evaluations",
        limit=limit,
        cursor=cursor,
        every_page=every_page,
        suite=suite,
        target=target,
    )
    if json_out:
        return _print_json(rows)
    if not rows:
        out.print("no evaluations yet (herald eval run --target … --suite …)")
        return None
    cols = [
        Col("id", copy=True),  # whole; a unique prefix also works with show and compare
        Col("suite", copy=True, hide=3),
        Col("target", copy=True),
        Col("version", hide=1),
        Col("status", min=6),
        Col("primary", hide=4),
        Col("passed", min=3, hide=5),
        Col("created", hide=2),
    ]
    table: list[list[Cell]] = []
    for r in rows:
        pm = r.get("primary_metric")
        value = (r.get("metrics", {}).get(pm) or {}).get("value") if pm else None
        table.append(
            [
                r["id"],
                r["suite"],
                r["target"],
                r.get("model_version") or "—",
                r["status"],
                f"{pm} = {_num(value)}" if pm else "—",
                _num(r.get("passed")),
                when(r["created_at"]),
            ]
        )
    print_table(out, err, cols, table)
    return None


@app.command("show")
def show(
    evaluation_id: str,
    samples: Annotated[bool, typer.Option("--samples", help="list per-sample records")] = False,
    failed: Annotated[bool, typer.Option("--failed", help="only samples with errors")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Show an evaluation's results (and its samples); a unique id prefix will do."""
    c = _client()
    evaluation_id = resolve_id(c, EVALUATION, evaluation_id)
    ev = _call(c._request, "GET", f"/v1/evaluations/{evaluation_id}")
    rows = None
    if samples or failed:
        params: dict[str, Any] = {"limit": limit}
        if failed:
            params["failed"] = "true"
        rows = _call(c._request, "GET", f"/v1/evaluations/{evaluation_id}/samples", params=params)[
            "data"
        ]
    if json_out:
        return _print_json({"evaluation": ev, "samples": rows})
    _summary(ev)
    if rows is not None:
        table: list[list[Cell]] = []
        for r in rows:
            scores = ", ".join(
                f"{k}={_num(v)}"
                for k, v in r["scores"].items()
                if ".\u005f" not in k and "._" not in k
            )
            errors = "; ".join(f"{k}: {v.get('error', v)}" for k, v in r["errors"].items())
            table.append([r["sample_id"], r.get("output") or "", scores or "—", errors or "—"])
        cols = [
            Col("sample", copy=True),
            Col("output", lines=3, min=20),
            Col("scores", lines=3),
            Col("errors", lines=3, min=20),
        ]
        print_table(out, err, cols, table)
    return None


@app.command("compare")
def compare(
    ids: Annotated[list[str], typer.Argument(help="BASELINE CANDIDATE [CANDIDATE…]")],
    metric: Annotated[list[str] | None, typer.Option(help="only these metrics")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Paired bootstrap of candidates against the baseline on the samples they share (unique
    id prefixes will do)."""
    c = _client()
    params: dict[str, Any] = {"ids": ",".join(resolve_ids(c, EVALUATION, ids))}
    if metric:
        params["metric"] = metric
    res = _call(c._request, "GET", "/v1/evaluations/compare", params=params)
    if json_out:
        return _print_json(res)
    cols = [
        Col("metric", copy=True),
        Col("baseline", min=6, hide=2),
        Col("candidate", min=6, hide=2),
        Col("diff", min=6),
        Col("95% CI", hide=3),
        Col("p", min=5, hide=1),
        Col("n", min=3, hide=1),
        Col("verdict"),
    ]
    for cmp in res["comparisons"]:
        table: list[list[Cell]] = []
        for name, r in cmp["metrics"].items():
            if r is None:
                table.append([name, "—", "—", "—", "—", "—", "0", "no shared items"])
                continue
            verdict: Cell = (
                Text("better", style="green")
                if r["better"]
                else Text("worse", style="red")
                if r["worse"]
                else "not significant"
            )
            table.append(
                [
                    name,
                    _num(r["mean_a"]),
                    _num(r["mean_b"]),
                    f"{r['diff']:+.4g}",
                    f"[{r['ci_low']:+.4g}, {r['ci_high']:+.4g}]",
                    _num(r["p_value"]),
                    str(r["n"]),
                    verdict,
                ]
            )
        title = f"{cmp['candidate']} vs {cmp['baseline']} ({res['suite']})"
        print_table(out, err, cols, table, title=title)
    return None


@app.command("leaderboard")
def leaderboard(
    suite: str,
    metric: Annotated[str | None, typer.Option(help="rank by this metric")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Latest completed result of every target on SUITE, best first."""
    params = {"suite": suite, **({"metric": metric} if metric else {})}
    res = _call(_client()._request, "GET", "/v1/evaluations/leaderboard", params=params)
    if json_out:
        return _print_json(res)
    arrow = "↑" if res["higher_is_better"] else "↓"
    cols = [
        Col("#", min=2),
        Col("target", copy=True),
        Col("version", hide=2),
        Col(f"{res['metric']} {arrow}", min=6),
        Col("95% CI", hide=3),
        Col("n", min=3, hide=1),
        Col("passed", min=3, hide=4),
        Col("evaluation", copy=True),
    ]
    table = []
    for r in res["data"]:
        s = r["score"] or {}
        ci = "—" if s.get("ci_low") is None else f"[{_num(s['ci_low'])}, {_num(s['ci_high'])}]"
        table.append(
            [
                str(r["rank"]),
                r["target"],
                r.get("model_version") or "—",
                _num(s.get("value")),
                ci,
                _num(s.get("n")),
                _num(r.get("passed")),
                r["evaluation_id"],
            ]
        )
    print_table(out, err, cols, table, title=f"leaderboard · {res['suite']}")
    return None
