"""The CLI's tables fit the terminal without cutting ids or words, every show/list command
has ``--json``, and shortened ids resolve the same way for every kind (issue 14)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from herald.cli import common
from herald.cli.main import app
from herald.cli.tables import Col, cut_words, layout, print_table, render, wrap_words
from herald.client import Client

ERROR = (
    "the checkpoint folder for step one hundred was not written because the disk of the "
    "worker was full when the job saved it"
)


def _words_intact(shown: str, text: str) -> None:
    """Every word of ``shown`` is a whole word of ``text`` (the last may end with ``…``)."""
    words = set(text.split())
    for token in shown.split():
        assert token.rstrip("…") in words, (token, shown)


def test_wrap_words_breaks_between_words_and_marks_what_was_left_out() -> None:
    lines = wrap_words(ERROR, 20, 2)
    assert len(lines) == 2 and all(len(line) <= 20 for line in lines)
    assert lines[-1].endswith("…")
    _words_intact(" ".join(lines), ERROR)
    assert wrap_words(ERROR, 200) == [ERROR]  # fits: untouched
    one = cut_words(ERROR, 30)
    assert len(one) <= 30 and one.endswith("…") and ERROR.startswith(one[:-1].rstrip())
    _words_intact(one, ERROR)


def test_a_long_word_breaks_after_punctuation_and_only_a_word_wider_than_the_column_is_cut() -> (
    None
):
    path = "/srv/herald/checkpoints/run-12/step-100/adapter_model.safetensors"
    lines = wrap_words(path, 24)
    assert "".join(lines) == path and all(len(line) <= 24 for line in lines)
    assert lines[0] == "/srv/herald/checkpoints/"  # broken after a slash, not inside a name
    assert wrap_words("x" * 50, 10) == ["x" * 9 + "…"]


def test_layout_hides_ranked_columns_first_and_never_narrows_a_copy_column() -> None:
    wid = "0199f3a2-1b2c-7d3e-8f40-123456789abc"
    cols = [
        Col("id", copy=True),
        Col("status", min=6),
        Col("executor", hide=1),
        Col("created", hide=2),
        Col("error", min=20),
    ]
    rows = [[wid, "failed", "process", "2025-01-02 10:11:12", ERROR]]
    shown, widths = layout(cols, rows, 80)
    assert shown == [0, 1, 3, 4] and widths[0] == len(wid)  # executor gave way first
    assert sum(widths) + 2 * (len(shown) - 1) <= 80
    shown, widths = layout(cols, rows, 60)
    assert shown == [0, 1, 4]
    # ids wider than the terminal stay whole: the line outgrows it
    huge = [["i" * 100, "ok", "", "", ""]]
    shown, widths = layout(cols, huge, 80)
    assert widths[0] == 100


def test_a_rendered_table_fits_80_columns_with_the_id_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    wid = "0199f3a2-1b2c-7d3e-8f40-123456789abc"
    cols = [Col("id", copy=True), Col("name", copy=True), Col("created", hide=1), Col("error")]
    rows = [[wid, "finetune.lora", "2025-01-02 10:11:12", ERROR], [wid[:-1] + "d", "x", "", ""]]
    print_table(Console(), Console(stderr=True), cols, rows)
    shown = capsys.readouterr()
    lines = shown.out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert wid in shown.out and wid[:-1] + "d" in shown.out
    error_part = " ".join(line[len(wid) + 2 :] for line in lines[1:3])
    _words_intact(error_part.replace("finetune.lora", ""), ERROR + " 2025-01-02 10:11:12")
    assert "…" in shown.out
    _, hidden = render(cols, rows, room=40)
    assert "created" in hidden and "error" not in hidden


# every show/list command has --json --------------------------------------------------------------
LISTING = {"list", "show", "versions", "history", "metrics", "compare", "leaderboard", "docs"}
GROUPS_THAT_LIST = {"jobs", "sensors", "dead-letters"}  # `herald jobs` lists jobs
TOP_LEVEL = {"events", "flow", "catalog"}


def _commands() -> list[tuple[str, Any]]:
    """``(path, command)`` of every command (typer's own click: walked by its ``commands``)."""
    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(cmd: Any, path: str) -> None:
        found.append((path, cmd))
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())

    walk(root, "")
    return found


SHOW_AND_LIST = [
    (path, cmd)
    for path, cmd in _commands()
    if path.split(" ")[-1] in LISTING or path in GROUPS_THAT_LIST | TOP_LEVEL
]


def test_the_walk_finds_the_commands_it_checks() -> None:
    paths = {p for p, _ in SHOW_AND_LIST}
    assert {"jobs", "jobs show", "eval list", "runs compare", "keys list", "rag docs"} <= paths
    assert len(paths) >= 25


@pytest.mark.parametrize(("path", "cmd"), SHOW_AND_LIST, ids=[p for p, _ in SHOW_AND_LIST])
def test_every_show_and_list_command_has_json(path: str, cmd: Any) -> None:
    opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
    assert "--json" in opts, f"`herald {path}` has no --json"


# shortened ids, per kind, against an HTTP double ---------------------------------------------------
A, B, C = "0199aaaa-1111-7000-8000-000000000001", "0199aaaa-2222-7000-8000-0000000002", "0199bbbb"
KINDS = [
    (common.JOB, {"/v1/jobs": [{"id": A}, {"id": B}, {"id": C + "-x"}]}),
    (common.EVALUATION, {"/v1/evaluations": [{"id": A}, {"id": B}, {"id": C + "-x"}]}),
    (common.RUN, {"/v1/runs": [{"id": A}, {"id": B}, {"id": C + "-x"}]}),
    (common.DEAD_LETTER, {"/v1/dead-letters": [{"id": A}, {"id": B}, {"id": C + "-x"}]}),
    (common.KEY, {"/v1/keys": [{"id": A}, {"id": B}, {"id": C + "-x"}]}),
    (common.APPROVAL, {"/v1/approvals": [{"id": A}, {"id": B}, {"id": C + "-x"}]}),
    (
        common.FLOW,
        {
            "/v1/messages": [
                {"id": "m1", "correlationid": A},
                {"id": "m2", "correlationid": A},  # one flow, many messages: one candidate
                {"id": "m3", "correlationid": B},
                {"id": "m4", "correlationid": C + "-x"},
            ]
        },
    ),
]


def _client(lists: dict[str, list[dict[str, Any]]], seen: list[str]) -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        if request.url.path in lists:
            return httpx.Response(200, json={"data": lists[request.url.path]})
        whole = {r.get("correlationid", r["id"]) for rows in lists.values() for r in rows}
        if request.url.path.rsplit("/", 1)[-1] in whole:
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such"}})

    return Client("http://herald.test", "k", transport=httpx.MockTransport(handler))


def _resolve(c: Client, kind: common.IdKind, given: str) -> tuple[int, str]:
    cmd = typer.Typer()

    @cmd.command()
    def go() -> None:
        typer.echo(common.resolve_id(c, kind, given))

    result = CliRunner().invoke(cmd, [])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.mark.parametrize(("kind", "lists"), KINDS, ids=[k.what for k, _ in KINDS])
def test_every_id_kind_resolves_a_unique_prefix(
    kind: common.IdKind, lists: dict[str, list[dict[str, Any]]]
) -> None:
    seen: list[str] = []
    c = _client(lists, seen)
    assert _resolve(c, kind, A) == (0, A + "\n")  # whole
    assert _resolve(c, kind, A[:16]) == (0, A + "\n")
    assert _resolve(c, kind, "0199bb") == (0, C + "-x\n")
    code, said = _resolve(c, kind, "0199aaaa")
    assert code == 1 and "is ambiguous" in said and A in said and B in said
    code, said = _resolve(c, kind, "ffff0000")
    assert code == 1 and f"no {kind.what} 'ffff0000'" in said
    code, said = _resolve(c, kind, "01")
    assert code == 1 and "at least 4 characters" in said
    if kind.get is None:  # the list alone decides: no lookup of a whole id
        assert not [s for s in seen if s.startswith(f"GET {kind.list}/")]
    assert all("limit=1000" in s for s in seen if s.startswith(f"GET {kind.list}?"))


def test_ids_of_a_kind_without_a_lookup_pass_through_when_the_scan_was_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(common, "PREFIX_SCAN", 2)
    c = _client({"/v1/keys": [{"id": "k1aaaa"}, {"id": "k2bbbb"}]}, [])
    assert common.resolve_id(c, common.KEY, "older-key-id") == "older-key-id"


def test_json_of_a_resolution_error_is_not_printed_to_stdout() -> None:
    c = _client({"/v1/jobs": [{"id": A}, {"id": B}]}, [])
    code, said = _resolve(c, common.JOB, "0199aaaa")
    assert code == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(said)
