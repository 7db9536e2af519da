"""``herald chat``: the streaming terminal chat against the gateway (fake backend)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from starlette.testclient import TestClient
from typer.testing import CliRunner

from herald.api import create_app
from herald.bootstrap import Herald
from herald.cli import serving as chat_cli
from herald.cli.main import app as cli
from herald.settings import Settings

KEY = "cli-key"


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'h.db'}",
        serving={
            "bundled": False,
            "registry": False,
            "models": {
                "echo": {"backend": "fake", "model": "e", "options": {"reply": "Hi there"}},
                "tiny": {"backend": "fake", "model": "t", "options": {"context_length": 40}},
            },
        },
    )
    h = Herald(settings)
    app = create_app(h, KEY, manage_lifecycle=False)
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c
    h.registry.close()


def script(*lines: str) -> object:
    it = iter(lines)

    def read() -> str:
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return read


def test_session_streams_keeps_history_and_handles_commands(http: TestClient) -> None:
    out = io.StringIO()
    console = Console(file=out, width=100)
    history = chat_cli.chat_session(
        http,
        "echo",
        read=script("hello", "/system Be brief.", "again", "/bogus", "/reset", "third"),  # type: ignore[arg-type]
        console=console,
    )
    text = out.getvalue()
    assert text.count("Hi there") == 3
    assert "system prompt set" in text and "history cleared" in text
    assert "unknown command /bogus" in text
    assert history == [
        {"role": "user", "content": "third"},
        {"role": "assistant", "content": "Hi there"},
    ]


def test_session_reports_server_errors_and_continues(http: TestClient) -> None:
    out = io.StringIO()
    history = chat_cli.chat_session(
        http,
        "tiny",
        read=script("x", "/exit", "never read"),  # type: ignore[arg-type]
        console=Console(file=out, width=200),
        max_tokens=500,
    )
    assert "error: 400" in out.getvalue()
    assert "maximum context length is 40" in out.getvalue()
    assert history == []


def test_cli_command(http: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat_cli, "_client", lambda url, key: http)
    runner = CliRunner()
    r = runner.invoke(cli, ["chat", "echo", "--temperature", "0.2"], input="hello\n/exit\n")
    assert r.exit_code == 0, r.output
    assert "Hi there" in r.output
    r = runner.invoke(cli, ["chat", "missing"], input="")
    assert r.exit_code == 1
    assert "does not exist" in r.output
