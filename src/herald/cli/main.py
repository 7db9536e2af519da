"""``herald``: run Herald, publish messages, follow events, inspect sensors, jobs and flows."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from herald.cli.common import (
    DEAD_LETTER,
    FLOW,
    JOB,
    AllOpt,
    CursorOpt,
    JsonOpt,
    LimitOpt,
    call,
    client,
    err,
    fail,
    fetch_list,
    out,
    print_json,
    resolve_id,
)
from herald.cli.tables import Col, cut_words, print_table, when, width
from herald.errors import HeraldError

if TYPE_CHECKING:
    from herald.bootstrap import Herald

app = typer.Typer(
    name="herald",
    help="Herald — event-driven LLMOps. Messages start work; sensors react; jobs run.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
sensors_app = typer.Typer(help="List, enable and disable sensors.", invoke_without_command=True)
jobs_app = typer.Typer(help="List, inspect, cancel and retry jobs.", invoke_without_command=True)
dead_app = typer.Typer(help="List and replay dead letters.", invoke_without_command=True)
db_app = typer.Typer(help="Database schema management.")
app.add_typer(sensors_app, name="sensors")
app.add_typer(jobs_app, name="jobs")
app.add_typer(dead_app, name="dead-letters")
app.add_typer(db_app, name="db")

dump = print_json


# herald up / api / worker -----------------------------------------------------------------------
def _settings(host: str | None, port: int | None, config: Path | None) -> Any:
    import os

    from herald.settings import load_settings

    if config is not None:
        if not config.is_file():
            fail(f"config file not found: {config}")
        os.environ["HERALD_CONFIG"] = str(config)
    overrides: dict[str, Any] = {}
    try:
        settings = load_settings()
        api = settings.api.model_copy(
            update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        )
        settings = settings.model_copy(update={"api": api, **overrides})
        from herald.security.files import record_server_cwd

        return record_server_cwd(settings, settings.api.host)  # cwd readable on loopback only
    except HeraldError as exc:
        fail(exc.message)


PREFLIGHT_TIMEOUT_S = 20.0
STARTUP_ERROR = 2  # exit code: a backend named in the configuration cannot be reached


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {PREFLIGHT_TIMEOUT_S:.0f} s"
    text = exc.message if isinstance(exc, HeraldError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:600]


def _preflight(settings: Any) -> None:
    """Reach the database and the artifact store before starting a role: exit 2 with the URL
    and what to check, instead of a traceback from deep inside start-up."""
    import asyncio
    import concurrent.futures
    import contextlib
    import time

    from herald.artifacts.registry import open_artifact_store
    from herald.bus.registry import open_event_log
    from herald.store.shared import safe_url

    db = settings.resolved_database_url

    async def check_database() -> None:
        log = open_event_log(db)
        try:
            await asyncio.wait_for(log.start(), PREFLIGHT_TIMEOUT_S)
        finally:
            with contextlib.suppress(Exception):  # a log that never opened: keep the cause
                await log.close()

    for attempt in range(1, 4):
        # a second try covers processes started together on a fresh database: the one that
        # loses the race to create the schema fails once, then finds it migrated
        try:
            asyncio.run(check_database())
            break
        except Exception as exc:
            if attempt < 3 and not isinstance(exc, TimeoutError):
                time.sleep(1.0)
                continue
            fail(
                f"cannot reach the database {safe_url(db)}: {_reason(exc)}\n"
                "  check HERALD_DATABASE_URL (or database_url in herald.yaml): is the server "
                "running and reachable from this host (host, port, firewall), are the user, "
                "password and database name right, and may the user create tables (Herald "
                "migrates on start; `herald db upgrade` does it ahead)?",
                code=STARTUP_ERROR,
            )
    arts = settings.resolved_artifacts_url
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        store = open_artifact_store(arts, cache_dir=settings.home / "cache" / "artifacts")
        # a lookup of a key that need not exist: it reaches the store without writing to it
        pool.submit(store.exists, "herald-preflight").result(PREFLIGHT_TIMEOUT_S)
    except Exception as exc:
        fail(
            f"cannot reach the artifact store {safe_url(arts)}: {_reason(exc)}\n"
            "  check HERALD_ARTIFACTS_URL (or artifacts_url in herald.yaml): for s3:// the "
            "endpoint_url, the bucket and the credentials (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY or a profile); for a local path that it is a writable folder.",
            code=STARTUP_ERROR,
        )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _serve(
    host: str | None,
    port: int | None,
    load: list[str] | None,
    config: Path | None,
    *,
    sensors: bool,
    workers: bool,
    factory: Callable[[Herald, str], Any] | None = None,
) -> None:
    import logging

    from herald.server import serve

    settings = _settings(host, port, config)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _preflight(settings)
    try:
        serve(settings, load=load or [], sensors=sensors, workers=workers, app_factory=factory)
    except HeraldError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"cannot start the server: {exc}")


HostOpt = Annotated[str | None, typer.Option("--host", help="Bind address (default 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port (default 8700).")]
LoadOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--load",
        "-l",
        help="Plugin to load: a .py file, a YAML rule file or a module (repeatable).",
    ),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="herald.yaml to use.")]


@app.command()
def up(
    host: HostOpt = None, port: PortOpt = None, load: LoadOpt = None, config: ConfigOpt = None
) -> None:
    """Run everything in one process tree: API, sensors and job workers (embedded defaults)."""
    _serve(host, port, load, config, sensors=True, workers=True)


@app.command()
def api(
    host: HostOpt = None, port: PortOpt = None, load: LoadOpt = None, config: ConfigOpt = None
) -> None:
    """Run only the API (sensors and workers run elsewhere against the same database)."""
    _serve(host, port, load, config, sensors=False, workers=False)


@app.command("serve")
def serve_models(
    host: HostOpt = None, port: PortOpt = None, load: LoadOpt = None, config: ConfigOpt = None
) -> None:
    """Run only model servers: the OpenAI data plane and deployments (no sensors, no workers)."""
    from herald.api.serving_role import create_serving_app

    _serve(host, port, load, config, sensors=False, workers=False, factory=create_serving_app)


@app.command()
def worker(
    load: LoadOpt = None,
    config: ConfigOpt = None,
    host: HostOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Also answer /healthz, /readyz and /metrics on this port (default: no HTTP).",
        ),
    ] = None,
) -> None:
    """Run sensors and job workers without the HTTP API (against a shared database)."""
    if host is not None and port is None:
        fail("--host needs --port (the worker answers HTTP only on a port you choose)")
    if port is not None:
        from herald.api.worker_role import create_worker_app

        _serve(host, port, load, config, sensors=True, workers=True, factory=create_worker_app)
        return
    import asyncio
    import logging
    import signal

    from herald.bootstrap import Herald

    settings = _settings(None, None, config)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _preflight(settings)

    async def run() -> None:
        h = Herald(settings, load=load or [])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await h.start()
        err.print(f"worker running on {settings.resolved_database_url} (Ctrl+C to stop)")
        try:
            await stop.wait()
        finally:
            await h.stop()

    try:
        asyncio.run(run())
    except HeraldError as exc:
        fail(exc.message)


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


# sensors ----------------------------------------------------------------------------------------
@sensors_app.callback()
def sensors(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List sensors with their state, cursor and lag."""
    if ctx.invoked_subcommand:
        return
    rows = call(client().sensors)
    if as_json:
        dump(rows)
        return
    cols = [
        Col("name", copy=True),
        Col("on", lines=3),
        Col("kind", hide=2, min=5),
        Col("enabled", min=3),
        Col("cursor", hide=1, min=6),
        Col("lag", min=3),
        Col("last error", min=20),
    ]
    table = [
        [
            s["name"],
            ", ".join(s.get("on") or []) or (s.get("cron") or ""),
            s.get("kind", ""),
            "yes" if s.get("enabled") else Text("no", style="red"),
            str(s.get("cursor")),
            str(s.get("lag", "")),
            s.get("last_error") or "",
        ]
        for s in rows
    ]
    print_table(out, err, cols, table)


@sensors_app.command("enable")
def sensor_enable(name: str) -> None:
    """Enable a sensor (it resumes from its cursor: nothing is skipped)."""
    call(client().set_sensor_enabled, name, True)
    out.print(f"sensor {name} enabled")


@sensors_app.command("disable")
def sensor_disable(name: str) -> None:
    """Disable a sensor at run time."""
    call(client().set_sensor_enabled, name, False)
    out.print(f"sensor {name} disabled")


# jobs -------------------------------------------------------------------------------------------
@jobs_app.callback()
def jobs(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status")] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    limit: LimitOpt = 20,
    cursor: CursorOpt = None,
    every_page: AllOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List jobs, newest first (one page; --cursor for the next, --all for every page)."""
    if ctx.invoked_subcommand:
        return
    rows = fetch_list(
        client(),
        "/v1/jobs",
        limit=limit,
        cursor=cursor,
        every_page=every_page,
        status=status,
        name=name,
    )
    if as_json:
        dump(rows)
        return
    cols = [
        Col("id", copy=True),  # whole: ids are typed back (a unique prefix also works)
        Col("name", copy=True),
        Col("status", min=6, hide=5),
        Col("attempt", min=3, hide=3),
        Col("executor", hide=1),
        Col("progress", min=4, hide=2),
        Col("created", hide=4),
        Col("error", min=24),
    ]
    table = []
    for j in rows:
        prog = "" if j.get("progress") is None else f"{j['progress'] * 100:.0f}%"
        table.append(
            [
                j["id"],
                j["name"],
                j["status"],
                f"{j['attempt']}/{j['max_attempts']}",
                j["executor"],
                prog,
                when(j["created_at"]),
                j.get("error") or "",
            ]
        )
    print_table(out, err, cols, table)


def _job_id(c: Any, job_id: str) -> str:
    return resolve_id(c, JOB, job_id)


@jobs_app.command("show")
def job_show(job_id: str, as_json: JsonOpt = False) -> None:
    """Show one job (JSON; an id may be shortened to a unique prefix)."""
    c = client()
    dump(call(c.job, _job_id(c, job_id)))  # the job is JSON either way; --json for scripts


@jobs_app.command("logs")
def job_logs(
    job_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
) -> None:
    """Print a job's log (stdout, stderr and ctx.log lines)."""
    import time

    c = client()
    job_id = _job_id(c, job_id)
    after = 0
    while True:
        for line in call(c.job_logs, job_id, after):
            after = line["seq"]
            style = "red" if line["stream"] == "stderr" else ""
            out.print(f"[{style}]{line['line']}[/]" if style else line["line"], highlight=False)
        if not follow:
            return
        if call(c.job, job_id)["status"] in ("succeeded", "failed", "cancelled"):
            return
        time.sleep(0.5)


@jobs_app.command("cancel")
def job_cancel(job_id: str, as_json: JsonOpt = False) -> None:
    """Cancel a queued job, or stop a running one."""
    c = client()
    job_id = _job_id(c, job_id)
    j = call(c.cancel_job, job_id)
    if as_json:
        dump(j)
        return
    out.print(
        f"job {job_id}: {j['status']}" + (" (stop requested)" if j["status"] == "running" else "")
    )


@jobs_app.command("retry")
def job_retry(job_id: str, as_json: JsonOpt = False) -> None:
    """Queue a failed or cancelled job again."""
    c = client()
    job_id = _job_id(c, job_id)
    j = call(c.retry_job, job_id)
    if as_json:
        dump(j)
        return
    out.print(f"job {job_id}: {j['status']}")


# dead letters -----------------------------------------------------------------------------------
@dead_app.callback()
def dead_letters(
    ctx: typer.Context,
    sensor: Annotated[str | None, typer.Option("--sensor")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    limit: LimitOpt = 100,
    cursor: CursorOpt = None,
    every_page: AllOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List events a sensor gave up on after all retries, newest first (paged like jobs)."""
    if ctx.invoked_subcommand:
        return
    rows = fetch_list(
        client(),
        "/v1/dead-letters",
        limit=limit,
        cursor=cursor,
        every_page=every_page,
        sensor=sensor,
        status=status,
    )
    if as_json:
        dump(rows)
        return
    cols = [
        Col("id", copy=True),  # whole; a unique prefix also works with replay
        Col("sensor", copy=True),
        Col("event", copy=True, hide=1),
        Col("type", hide=3),
        Col("attempts", min=3, hide=2),
        Col("status", min=6, hide=4),
        Col("error", min=24),
    ]
    table = [
        [
            d["id"],
            d["sensor"],
            d["event_id"],
            d["event_type"],
            str(d["attempts"]),
            d["status"],
            d["error"],
        ]
        for d in rows
    ]
    print_table(out, err, cols, table)


@dead_app.command("replay")
def dead_replay(dead_letter_id: str, as_json: JsonOpt = False) -> None:
    """Run the sensor on the dead-lettered event again (a unique id prefix will do)."""
    c = client()
    dead_letter_id = resolve_id(c, DEAD_LETTER, dead_letter_id)
    d = call(c.replay, dead_letter_id)
    if as_json:
        dump(d)
        return
    out.print(f"dead letter {dead_letter_id}: {d['status']}")


# db & misc --------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Apply database migrations (herald up does this itself)."""
    import asyncio

    from herald.bus.registry import open_event_log

    settings = _settings(None, None, config)

    async def run() -> None:
        log = open_event_log(settings.resolved_database_url)
        await log.start()
        await log.close()

    try:
        asyncio.run(run())
    except HeraldError as exc:
        fail(exc.message)
    out.print(f"schema up to date: {settings.resolved_database_url}")


@app.command()
def version() -> None:
    """Print Herald's version."""
    from herald import __version__

    out.print(__version__)


def _add_capability_groups() -> None:
    from importlib import import_module

    from herald.cli.groups import cli_groups

    for name, module in cli_groups():
        app.add_typer(import_module(module).app, name=name)


_add_capability_groups()


def main() -> None:
    try:
        app()
    except HeraldError as exc:
        fail(exc.message)


if __name__ == "__main__":
    main()
