"""Every command the README and the guides show parses with the real CLI, every repo path they
name exists, every Python snippet compiles and every YAML example validates against what reads it.

A renamed command or option, a moved example file or a settings key that no longer exists fails
here, before a reader copies it. Nothing is invoked: ``make_context`` resolves the subcommand
path and parses options and arguments exactly as ``herald`` would. ``tests/e2e/test_docs_run.py``
runs the cheap blocks against a real server.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import re
import typing
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml
from pydantic import BaseModel

from tests.docs_blocks import (
    ROOT,
    SHELL,
    Block,
    Line,
    blocks,
    commands,
    herald_args,
    logical_lines,
    repo_paths,
)

SHELL_LINES = [line for block in blocks(*SHELL) for line in logical_lines(block)]
HERALD_LINES = [
    (line, args)
    for line in SHELL_LINES
    for tokens in commands(line)
    if (args := herald_args(tokens)) is not None
]
# YAML examples that Herald does not read (shown for another tool's configuration)
# typer >= 0.25 runs on its own vendored copy of click (`typer._click`); its errors are click's
_CLICK = (
    importlib.import_module("typer._click") if importlib.util.find_spec("typer._click") else click
)
CLICK_ERRORS = (click.ClickException, _CLICK.ClickException)
FOREIGN_YAML = {
    "docs/guides/scale-out.md": "prometheus-adapter rules (seriesQuery), read by Kubernetes",
}


def _id(line: Line) -> str:
    return line.where


@functools.cache
def herald_cli() -> Any:
    from herald.cli.main import app

    return typer.main.get_command(app)


def parse_herald(args: list[str]) -> Any:
    """Resolve ``herald <args>`` to its command and parse its parameters, without invoking;
    returns the command (a click command), raises a click error as ``herald`` would print."""
    cmd: Any = herald_cli()
    name, parent, rest = "herald", None, list(args)
    while True:
        ctx = cmd.make_context(name, rest, parent=parent)
        if not hasattr(cmd, "resolve_command"):  # a command, not a group
            return cmd
        protected = getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", [])
        remaining = [*protected, *ctx.args]  # the subcommand and its arguments
        if not remaining:
            return cmd
        sub_name, sub, rest = cmd.resolve_command(ctx, remaining)
        assert sub is not None and sub_name is not None
        cmd, name, parent = sub, sub_name, ctx


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rag", "ingestt", "x"], "No such command"),
        (["rag", "ingest", "x", "--collectionz", "h"], "No such option"),
        (["models", "show"], "ref"),
        (["eval", "run", "--suite"], "requires an argument"),
    ],
)
def test_drift_fails_to_parse(args: list[str], message: str) -> None:
    with pytest.raises(CLICK_ERRORS, match=message):
        parse_herald(args)


def test_the_docs_show_herald_commands() -> None:
    # the extraction itself must keep finding the README's and the guides' commands
    files = {line.block.path.name for line, _ in HERALD_LINES}
    assert {"README.md", "rag.md", "registry.md", "prompts.md", "deployments.md"} <= files
    assert len(HERALD_LINES) > 60


@pytest.mark.parametrize(("line", "args"), HERALD_LINES, ids=[_id(x) for x, _ in HERALD_LINES])
def test_herald_command_parses(
    line: Line, args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # files a block writes itself (`cat > answer.j2 <<'T'`) or that the reader brings exist in
    # the reader's folder: give them to the parser as empty files beside the repo's own
    for name in re.findall(r"(?<![\w/.-])([\w-]+\.(?:j2|jsonl|yaml|csv|md))(?![\w/])", line.text):
        if not (ROOT / name).exists():
            (tmp_path / name).write_text("")
    monkeypatch.chdir(tmp_path)
    for entry in ("examples", "README.md", "Makefile"):
        (tmp_path / entry).symlink_to(ROOT / entry)
    try:
        parse_herald(args)
    except CLICK_ERRORS as exc:
        pytest.fail(
            f"{line.where}: `herald {' '.join(args)}` does not parse: {exc.format_message()}"
        )


@pytest.mark.parametrize("line", SHELL_LINES, ids=[_id(x) for x in SHELL_LINES])
def test_repo_paths_exist(line: Line) -> None:
    missing = [p for p in repo_paths(line.text) if not (ROOT / p).exists()]
    assert missing == [], f"{line.where}: no such file in the repository: {missing}"


CURL_BODIES = [x for x in SHELL_LINES if re.search(r"(^|\s)curl\s.*\s(-d|--data)\s", x.text, re.S)]


@pytest.mark.parametrize("line", CURL_BODIES, ids=[_id(x) for x in CURL_BODIES])
def test_curl_with_a_body_says_it_is_json(line: Line) -> None:
    # `curl -d` sends application/x-www-form-urlencoded, which the API refuses with a 422
    assert re.search(r"content-type: application/json", line.text, re.I), (
        f"{line.where}: add -H 'content-type: application/json'"
    )


def test_make_targets_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    used = {
        (line.where, tokens[1])
        for line in SHELL_LINES
        for tokens in commands(line)
        if len(tokens) > 1 and tokens[0] == "make"
    }
    assert used, "the README shows make targets"
    assert [(where, t) for where, t in sorted(used) if t not in targets] == []


PYTHON = blocks("python")


@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_python_snippet_compiles(block: Block) -> None:
    # top-level `await` is allowed: snippets written for `python -m asyncio` or a notebook
    compile(block.text, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def yaml_kind(data: Any) -> str:
    from herald.settings import Settings

    if not isinstance(data, dict):
        return "unknown"
    if data.keys() <= Settings.model_fields.keys():
        return "settings"
    if {"base_model", "model_name"} <= data.keys():
        return "finetune"
    if {"name", "engines"} <= data.keys():
        return "suite"
    if data.keys() <= {"sensors", "schedules"}:
        return "sensor rules"
    if data.keys() == {"rules"} and all("metric" in r for r in data["rules"]):
        return "monitoring rules"
    return "unknown"


def unknown_keys(model: type[BaseModel], data: Any, path: str = "") -> list[str]:
    """Keys of ``data`` (at any depth) that ``model`` has no field for."""
    if not isinstance(data, dict):
        return []
    out = []
    for key, value in data.items():
        field = model.model_fields.get(str(key))
        if field is None:
            out.append(f"{path}{key}")
        else:
            out += _unknown_in(field.annotation, value, f"{path}{key}.")
    return out


def _unknown_in(annotation: Any, value: Any, path: str) -> list[str]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return unknown_keys(annotation, value, path)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return [k for key, v in value.items() for k in _unknown_in(args[1], v, f"{path}{key}.")]
    if origin is list and isinstance(value, list) and args:
        return [k for i, v in enumerate(value) for k in _unknown_in(args[0], v, f"{path}{i}.")]
    if args and origin not in (dict, list):  # X | None, Annotated[X, ...]
        return next((found for a in args if (found := _unknown_in(a, value, path))), [])
    return []


YAML = blocks("yaml")


@pytest.mark.parametrize("block", YAML, ids=[b.where for b in YAML])
def test_yaml_example_validates(
    block: Block, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = yaml.safe_load(block.text)
    kind = yaml_kind(data)
    rel = str(block.path.relative_to(ROOT))
    if kind == "unknown":
        assert rel in FOREIGN_YAML, f"{block.where}: which Herald file is this YAML? {data}"
        return
    if kind == "settings":  # as `herald up` reads it: herald.yaml under the environment
        from herald.settings import load_settings

        (tmp_path / "herald.yaml").write_text(block.text)
        monkeypatch.setenv("HERALD_CONFIG", str(tmp_path / "herald.yaml"))
        monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
        settings = load_settings()
        # nested sections ignore unknown keys (a typo in herald.yaml is dropped silently), so
        # check every key of the example against the settings tree here
        assert unknown_keys(type(settings), data) == [], f"{block.where}: not a setting"
    elif kind == "finetune":
        from herald.training.config import validate_config
        from herald.training.job import FinetuneConfig

        validate_config(FinetuneConfig, data)
    elif kind == "suite":
        from herald.evaluation.suites import parse_suite

        parse_suite(data, base_dir=ROOT / "examples" / "eval", origin=block.where)
    elif kind == "sensor rules":
        from herald.sensors.rules import RuleFile

        for rule in data.get("sensors") or []:
            if True in rule:  # YAML 1.1 reads a bare `on:` as true, as load_rules undoes
                rule["on"] = rule.pop(True)
        RuleFile.model_validate(data)
    else:
        from herald.monitoring.rules import load_rules

        load_rules(data["rules"])


def test_every_yaml_kind_is_checked() -> None:
    kinds = {yaml_kind(yaml.safe_load(b.text)) for b in YAML}
    assert {"settings", "finetune", "suite", "sensor rules", "monitoring rules"} <= kinds
