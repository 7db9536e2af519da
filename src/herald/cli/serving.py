"""``herald chat MODEL``: an interactive, streaming terminal chat with any served model.

Talks to ``$HERALD_URL/v1/chat/completions`` (OpenAI wire format) with the API key from
``HERALD_API_KEY`` or ``$HERALD_HOME/admin.key``. In the chat: ``/reset`` clears the history,
``/system TEXT`` sets the system prompt, ``/exit`` (or Ctrl+D) leaves; Ctrl+C stops an answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

app = typer.Typer(
    help="Chat with a served model in the terminal (streaming).",
    invoke_without_command=True,
    no_args_is_help=True,
    # a one-command group: let options follow the MODEL argument
    context_settings={"allow_interspersed_args": True},
)

HELP = "Commands: /reset (clear history), /system TEXT (set the system prompt), /exit"


def _client(url: str | None, key: str | None) -> httpx.Client:
    from herald.auth import read_api_key
    from herald.settings import default_home

    base = (url or os.environ.get("HERALD_URL") or "http://127.0.0.1:8700").rstrip("/")
    token = read_api_key(default_home(), key or os.environ.get("HERALD_API_KEY"))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base, headers=headers, timeout=httpx.Timeout(600, connect=10))


def stream_chat(http: httpx.Client, body: dict[str, Any]) -> Iterator[str]:
    """Yield the assistant's text pieces; raise RuntimeError with the server's message."""
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        if r.status_code >= 400:
            r.read()
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:500]
            raise RuntimeError(f"{r.status_code}: {message}")
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            chunk = json.loads(data)
            if "error" in chunk:
                raise RuntimeError(chunk["error"].get("message", "stream failed"))
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece


def chat_session(
    http: httpx.Client,
    model: str,
    *,
    read: Callable[[], str],
    console: Console,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> list[dict[str, str]]:
    """Run the read-send-print loop until /exit or end of input; return the history."""
    history: list[dict[str, str]] = []
    while True:
        try:
            line = read().strip()
        except EOFError:
            console.print()
            return history
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return history
        if line == "/reset":
            history.clear()
            console.print("[dim](history cleared)[/]")
            continue
        if line.startswith("/system"):
            system = line[len("/system") :].strip() or None
            console.print(f"[dim](system prompt {'set' if system else 'cleared'})[/]")
            continue
        if line.startswith("/"):
            console.print(f"[yellow]unknown command {line.split()[0]}[/]  {HELP}")
            continue
        history.append({"role": "user", "content": line})
        messages = ([{"role": "system", "content": system}] if system else []) + history
        body: dict[str, Any] = {"model": model, "messages": messages}
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        answer = ""
        try:
            for piece in stream_chat(http, body):
                answer += piece
                console.print(piece, end="", markup=False, highlight=False, soft_wrap=True)
            console.print()
        except KeyboardInterrupt:
            console.print("\n[dim](stopped)[/]")
        except (RuntimeError, httpx.HTTPError) as exc:
            history.pop()
            console.print(f"[bold red]error:[/] {exc}", highlight=False)
            continue
        history.append({"role": "assistant", "content": answer})


@app.callback()
def chat(
    model: Annotated[str, typer.Argument(help="Served model name, e.g. smollm2-135m-instruct.")],
    system: Annotated[str | None, typer.Option("--system", "-s", help="System prompt.")] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", "-t", min=0.0, max=2.0)
    ] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1)] = None,
    url: Annotated[str | None, typer.Option("--url", help="Herald URL (HERALD_URL).")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="HERALD_API_KEY")] = None,
) -> None:
    """Chat with MODEL; answers stream as they are generated."""
    console = Console()
    with _client(url, api_key) as http:
        try:
            r = http.get(f"/v1/models/{model}")
        except httpx.HTTPError as exc:
            console.print(f"[bold red]error:[/] cannot reach Herald at {http.base_url}: {exc}")
            raise typer.Exit(1) from None
        if r.status_code != 200:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:300]
            console.print(f"[bold red]error:[/] {message}", highlight=False)
            raise typer.Exit(1)
        console.print(f"[bold]{model}[/] — {HELP}")
        chat_session(
            http,
            model,
            read=lambda: console.input("[bold cyan]you>[/] "),
            console=console,
            system=system,
            temperature=temperature,
            max_tokens=max_tokens,
        )
