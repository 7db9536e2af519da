"""``herald sensors|jobs|dead-letters``: operate the sensors and jobs of a running Herald."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from herald.cli.common import (
    DEAD_LETTER,
    JOB,
    AllOpt,
    CursorOpt,
    JsonOpt,
    LimitOpt,
    call,
    client,
    err,
    fetch_list,
    out,
    print_json,
    resolve_id,
)
from herald.cli.tables import Col, print_table, when

if TYPE_CHECKING:
    pass

from herald.cli.app import dead_app, jobs_app, sensors_app

dump = print_json


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
