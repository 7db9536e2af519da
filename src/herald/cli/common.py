"""What every CLI group shares: consoles, ``--json``, errors without stack traces, the client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from herald.errors import HeraldError

T = TypeVar("T")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # errors stay one line (easy to grep)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
CursorOpt = Annotated[
    str | None,
    typer.Option("--cursor", help="Start after this next-cursor (printed when more rows exist)."),
]
AllOpt = Annotated[
    bool, typer.Option("--all", help="Follow every page (--limit rows per request).")
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Rows per page.")]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` (as text, never as Rich markup) and exit with ``code``."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def call(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """``fn(*args, **kw)``; a :class:`HeraldError` becomes a one-line error and exit 1."""
    try:
        return fn(*args, **kw)
    except HeraldError as exc:
        fail(exc.message)


def client() -> Any:
    """A :class:`herald.Client` for ``HERALD_URL`` / ``HERALD_API_KEY`` (or the key file)."""
    from herald.client import Client

    try:
        return Client()
    except HeraldError as exc:
        fail(exc.message)


def fetch_list(
    c: Any,
    path: str,
    *,
    limit: int,
    cursor: str | None = None,
    every_page: bool = False,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Rows of one page of a list endpoint (or of every page with ``every_page``). When more
    rows exist, the cursor to continue with goes to stderr, so ``--json`` output stays clean."""
    if every_page:
        return call(lambda: list(c.iterate(path, limit=limit, cursor=cursor, **filters)))
    got = call(c.page, path, limit=limit, cursor=cursor, **filters)
    if got["next_cursor"]:
        err.print(
            f"more rows: rerun with --cursor {got['next_cursor']} (or --all for every page)",
            highlight=False,
            soft_wrap=True,
        )
    return list(got["data"])


def print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


PREFIX_SCAN = 1000  # newest rows searched for an id prefix


def resolve_id(c: Any, path: str, given: str, *, what: str, key: str = "id") -> str:
    """``given`` if ``path/given`` exists, else the one id among the newest rows of ``path``
    that starts with it (ids can be typed back shortened, as git's can); an ambiguous or
    unknown prefix is a one-line error naming the candidates."""
    from herald.errors import NotFound

    try:
        c._request("GET", f"{path}/{given}")
        return given
    except NotFound:
        pass
    except HeraldError as exc:
        fail(exc.message)
    if len(given) < 4:
        fail(f"no {what} {given!r} (a shortened id needs at least 4 characters)")
    rows = call(lambda: list(c.iterate(path, limit=200)))[:PREFIX_SCAN]
    found = [str(r[key]) for r in rows if str(r[key]).startswith(given)]
    if not found:
        fail(
            f"no {what} {given!r} (nor one whose id starts with it among the newest {PREFIX_SCAN})"
        )
    if len(found) > 1:
        fail(
            f"{what} id prefix {given!r} is ambiguous: {', '.join(found[:5])}"
            + (" …" if len(found) > 5 else "")
        )
    return found[0]
