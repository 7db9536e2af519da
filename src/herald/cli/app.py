"""The root ``herald`` command and the groups of the backbone's commands (the modules
:mod:`herald.cli.server`, :mod:`herald.cli.events` and :mod:`herald.cli.ops` add their commands
to them; capabilities add theirs through :mod:`herald.capabilities`)."""

from __future__ import annotations

import typer

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
