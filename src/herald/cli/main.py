"""``herald``: run Herald, publish messages, follow events, inspect sensors, jobs and flows.

The commands live by concern — :mod:`herald.cli.server` (up, api, worker, serve, db),
:mod:`herald.cli.events` (emit, events, flow, catalog), :mod:`herald.cli.ops` (sensors, jobs,
dead letters) — and each capability's group comes from :mod:`herald.capabilities`.
"""

from __future__ import annotations

from importlib import import_module

from herald.cli.app import app
from herald.cli.common import fail, out
from herald.errors import HeraldError

__all__ = ["app", "main"]

# the backbone's commands, in the order `herald --help` lists them
for _module in ("herald.cli.server", "herald.cli.events", "herald.cli.ops"):
    import_module(_module)


@app.command()
def version() -> None:
    """Print Herald's version."""
    from herald import __version__

    out.print(__version__)


def _add_capability_groups() -> None:
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
