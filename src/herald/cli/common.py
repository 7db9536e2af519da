"""What every CLI group shares: consoles, ``--json``, errors without stack traces, the client."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any, NoReturn, TypeVar
from urllib.parse import quote

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
    """``fn(*args, **kw)``; a :class:`HeraldError` becomes a readable error (one line, plus one
    line per invalid field when the server lists them) and exit 1."""
    try:
        return fn(*args, **kw)
    except HeraldError as exc:
        details = exc.details if isinstance(exc.details, list) else None
        lines = [
            f"  {'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
            for d in details or []
            if isinstance(d, dict)
        ]
        fail(exc.message + ("\n" + "\n".join(lines) if lines else ""))


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
MIN_PREFIX = 4


@dataclass(frozen=True)
class IdKind:
    """Where the ids of one kind come from, for :func:`resolve_id`.

    ``get`` is the endpoint that answers ``GET {get}/{id}`` for a whole id (None: there is
    none, the list alone decides); ``list`` the endpoint whose newest rows are searched for a
    prefix, with ``params``; ``key`` the row field that holds the id."""

    what: str
    list: str
    get: str | None = None
    key: str = "id"
    params: tuple[tuple[str, Any], ...] = ()


JOB = IdKind("job", "/v1/jobs", get="/v1/jobs")
EVALUATION = IdKind("evaluation", "/v1/evaluations", get="/v1/evaluations")
RUN = IdKind("run", "/v1/runs", get="/v1/runs")
DEAD_LETTER = IdKind("dead letter", "/v1/dead-letters")
KEY = IdKind("API key", "/v1/keys")
# an approval id is the id of its approval.requested message; only pending ones are listed
APPROVAL = IdKind("approval request", "/v1/approvals", get="/v1/messages")
FLOW = IdKind(
    "flow",
    "/v1/messages",
    get="/v1/flows",
    key="correlationid",
    params=(("order", "desc"),),
)


def resolve_id(c: Any, kind: IdKind, given: str) -> str:
    """``given`` if it is a whole id of ``kind``, else the one id among the newest rows of
    ``kind.list`` that starts with it (ids can be typed back shortened, as git's can); an
    ambiguous or unknown prefix is a one-line error naming the candidates."""
    from herald.errors import NotFound

    if kind.get is not None:
        try:
            c._request("GET", f"{kind.get}/{quote(given, safe='')}")
            return given
        except NotFound:
            pass
        except HeraldError as exc:
            fail(exc.message)
    params = dict(kind.params)
    rows = call(
        lambda: list(islice(c.iterate(kind.list, limit=PREFIX_SCAN, **params), PREFIX_SCAN))
    )
    ids = list(dict.fromkeys(str(r[kind.key]) for r in rows if r.get(kind.key)))
    if given in ids:
        return given
    found = [i for i in ids if i.startswith(given)] if len(given) >= MIN_PREFIX else []
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        fail(
            f"{kind.what} id prefix {given!r} is ambiguous: {', '.join(found[:5])}"
            + (f" … ({len(found)} in all); type more characters" if len(found) > 5 else "")
        )
    if kind.get is None and len(rows) >= PREFIX_SCAN:
        return given  # older than the rows searched: the server says whether it exists
    if len(given) < MIN_PREFIX:
        fail(f"no {kind.what} {given!r} (a shortened id needs at least {MIN_PREFIX} characters)")
    where = f" among the newest {PREFIX_SCAN}" if len(rows) >= PREFIX_SCAN else ""
    fail(f"no {kind.what} {given!r} (no {kind.what} id starts with it{where})")


def resolve_ids(c: Any, kind: IdKind, given: list[str]) -> list[str]:
    """:func:`resolve_id` of each."""
    return [resolve_id(c, kind, g) for g in given]
