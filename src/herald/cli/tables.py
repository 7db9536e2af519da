"""Every table the CLI prints: it fits the terminal (``COLUMNS``, else its width, else 80).

- A column marked ``copy`` (ids, names: what a user types back) is printed whole, never
  wrapped nor cut, even when that makes the line longer than the terminal.
- Every other cell wraps at word boundaries (spaces, then after ``/ . _ : , = -`` inside a long
  word) to at most ``lines`` lines; text that does not fit ends with ``…`` after a whole word.
  Only a single word longer than the column is cut inside (ending with ``…``).
- When the columns' narrowest widths still do not fit, columns with a ``hide`` rank give way,
  lowest rank first, and stderr names them (``--json`` has every field).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.table import Column, Table
from rich.text import Text

Cell = str | Text
ELLIPSIS = "…"
SHORT_WORD = 12  # words up to this long (statuses, numbers, dates) are never broken
_PIECES = re.compile(r"[^/._:,=-]*[/._:,=-]+|[^/._:,=-]+")  # a word, broken after punctuation


@dataclass(frozen=True)
class Col:
    """One column: ``copy`` cells are never cut; others wrap to ``lines`` lines, no narrower
    than ``min`` characters; ``hide`` ranks the columns that give way (lowest first)."""

    header: str
    copy: bool = False
    lines: int = 2
    min: int = 6
    hide: int | None = None
    justify: JustifyMethod = "left"


def width() -> int:
    """The terminal's width: ``COLUMNS`` when set (as in tests and pipes), else the terminal's."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return shutil.get_terminal_size((80, 24)).columns


def when(value: Any) -> str:
    """A timestamp (ISO text, a datetime or epoch seconds) as ``YYYY-MM-DD HH:MM:SS``: it wraps
    between date and time in a narrow column."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)[:19].replace("T", " ")


def _tokens(text: str, limit: int) -> list[tuple[str, bool]]:
    """``(piece, follows_a_space)``: words, and words longer than ``limit`` broken after
    punctuation."""
    result: list[tuple[str, bool]] = []
    for word in text.split():
        if cell_len(word) <= limit:
            result.append((word, True))
            continue
        for n, piece in enumerate(_PIECES.findall(word)):
            result.append((piece, n == 0))
    return result


def _hard_cut(piece: str, limit: int) -> str:
    while piece and cell_len(piece) > limit:
        piece = piece[:-1]
    return piece


def wrap_words(text: str, limit: int, lines: int | None = None) -> list[str]:
    """``text`` in lines of at most ``limit`` cells, broken between words; with ``lines``, at
    most that many, the last ending with ``…`` after a whole word when text was left out."""
    limit = max(limit, 1)
    out: list[str] = []
    current = ""
    for piece, spaced in _tokens(text, limit):
        joined = f"{current} {piece}" if current and spaced else current + piece
        if cell_len(joined) <= limit:
            current = joined
            continue
        if current:
            out.append(current)
        while cell_len(piece) > limit:  # a word wider than the column: the only cut inside
            out.append(_hard_cut(piece, limit - 1) + ELLIPSIS)
            piece = ""
        current = piece
    if current:
        out.append(current)
    if lines is None or len(out) <= lines:
        return out
    kept, last = out[: lines - 1], out[lines - 1]
    words = last.split(" ")
    while len(words) > 1 and cell_len(" ".join(words) + ELLIPSIS) > limit:
        words.pop()
    tail = " ".join(words)
    if cell_len(tail + ELLIPSIS) > limit:
        tail = _hard_cut(tail, limit - 1)
    return [*kept, tail.rstrip("/._:,=-") + ELLIPSIS if tail else ELLIPSIS]


def cut_words(text: str, limit: int) -> str:
    """``text`` on one line of at most ``limit`` cells, cut after a whole word with ``…``."""
    return wrap_words(" ".join(text.split()), limit, 1)[0] if text.strip() else ""


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _natural(col: Col, cells: Iterable[Cell]) -> int:
    lines = [line for c in cells for line in _plain(c).split("\n")]
    return max([cell_len(col.header), *(cell_len(line) for line in lines)])


def _narrowest(col: Col, cells: Sequence[Cell], natural: int) -> int:
    """A copy column's natural width; else ``min``, but never so narrow that a header word
    or a short word of a cell (a status, a number, a date: up to ``SHORT_WORD``) breaks."""
    if col.copy:
        return natural
    words = [w for c in cells for w in _plain(c).split() if cell_len(w) <= SHORT_WORD]
    words += col.header.split()
    return min(natural, max([col.min, *(cell_len(w) for w in words)]))


def _fit(widths: list[int], mins: list[int], room: int) -> list[int]:
    """Narrow the widest shrinkable columns first until the sum fits ``room`` (or all are at
    their narrowest)."""
    widths = list(widths)
    while sum(widths) > room:
        shrinkable = [i for i, w in enumerate(widths) if w > mins[i]]
        if not shrinkable:
            break
        widest = max(widths[i] for i in shrinkable)
        for i in shrinkable:
            if widths[i] == widest:
                widths[i] -= 1
                if sum(widths) <= room:
                    break
    return widths


def layout(
    cols: Sequence[Col], rows: Sequence[Sequence[Cell]], room: int
) -> tuple[list[int], list[int]]:
    """``(shown column indexes, their widths)`` for a table ``room`` cells wide (two cells of
    padding between columns)."""
    shown = list(range(len(cols)))
    natural = {i: _natural(cols[i], (r[i] for r in rows)) for i in shown}
    narrowest = {i: _narrowest(cols[i], [r[i] for r in rows], natural[i]) for i in shown}
    while True:
        mins = [narrowest[i] for i in shown]
        space = room - 2 * (len(shown) - 1)
        if sum(mins) <= space:
            return shown, _fit([natural[i] for i in shown], mins, space)
        hideable = [i for i in shown if cols[i].hide is not None]
        if not hideable:
            return shown, mins  # ids stay whole: the line is longer than the terminal
        shown.remove(min(hideable, key=lambda i: (cols[i].hide, -i)))


def _cell(cell: Cell, col: Col, w: int) -> Cell:
    if col.copy:
        return cell
    plain = _plain(cell)
    lines = [line for part in plain.split("\n") for line in wrap_words(part, w) or [""]]
    if len(lines) > col.lines:
        lines = wrap_words(" ".join(plain.split()), w, col.lines)
    text = "\n".join(lines)
    if isinstance(cell, Text):
        return Text(text, style=cell.style)
    return Text(text)


def render(
    cols: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    room: int | None = None,
) -> tuple[Table, list[str]]:
    """The table for ``rows`` (one cell per column) and the headers of hidden columns."""
    room = room or width()
    shown, widths = layout(cols, rows, room)
    table = Table(
        *(
            Column(
                cols[i].header,
                width=w,
                no_wrap=True,
                overflow="ignore",
                justify=cols[i].justify,
            )
            for i, w in zip(shown, widths, strict=True)
        ),
        box=None,
        padding=(0, 1),
        pad_edge=False,
        title=Text(title) if title else None,
        title_justify="left",
        header_style="bold",
    )
    for row in rows:
        table.add_row(*(_cell(row[i], cols[i], w) for i, w in zip(shown, widths, strict=True)))
    return table, [c.header for i, c in enumerate(cols) if i not in shown]


def print_table(
    out: Console,
    err: Console,
    cols: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
) -> None:
    """Print ``rows`` as a table that fits the terminal (see the module docstring)."""
    room = width()
    table, hidden = render(cols, rows, title=title, room=room)
    wide = sum(c.width or 0 for c in table.columns) + 2 * (len(table.columns) - 1)
    saved = out._width
    out.width = max(room, wide)  # ids stay whole even where the line outgrows the terminal
    try:
        out.print(table, crop=False, highlight=False)
    finally:
        out._width = saved
    if hidden:
        err.print(
            f"(not shown at {room} columns: {', '.join(hidden)}; a wider terminal or --json "
            "shows them)",
            highlight=False,
        )


def print_fields(out: Console, fields: Sequence[tuple[str, Any]]) -> None:
    """``key  value`` lines of one record. Values are printed whole on one line (the terminal
    wraps a long one, which copies back as one line): URIs and ids in them are typed back."""
    pad = max((cell_len(k) for k, _ in fields), default=0)
    for key, value in fields:
        line = Text(key.ljust(pad), style="bold")
        line.append("  " + str(value))
        out.print(line, soft_wrap=True, highlight=False)
