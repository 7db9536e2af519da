"""``herald datasets register NAME SOURCE``: register a data set version through a running Herald.

Publishes ``dataset.register``; with ``--wait`` (the default) waits for the flow's
``dataset.registered`` (or the job's failure, with its row errors) and prints the version.
``herald datasets list|show`` come from the registry's CLI when it is installed.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from herald.cli.common import fail as _fail
from herald.cli.common import out
from herald.cli.tables import print_fields
from herald.errors import HeraldError


def _datasets_app() -> typer.Typer:
    """The registry CLI's ``datasets`` group (list, show) if installed, else a new group."""
    try:
        module = importlib.import_module("herald.cli.registry")
    except ImportError:
        module = None
    found = getattr(module, "datasets_app", None)
    if isinstance(found, typer.Typer):
        return found
    return typer.Typer(help="Register and inspect data set versions.", no_args_is_help=True)


app = _datasets_app()

FORMATS = ("auto", "chat", "instruction", "text")


def _source(source: str) -> str:
    """A local path made absolute (the server may run elsewhere in the tree); URLs unchanged."""
    from herald.datasets.loader import is_url

    if is_url(source):
        return source
    path = Path(source).expanduser()
    if not path.exists():
        _fail(
            f"{source} does not exist here; pass an existing file, or a URL (s3://…, https://…) "
            "that the Herald server can read"
        )
    if not path.is_file():
        _fail(f"{source} is not a file (pass a .jsonl, .json, .csv, .tsv or .parquet file)")
    return str(path.resolve())


def _publish(c: Any, data: dict[str, Any], upload: bool | None) -> Any:
    """``dataset.register`` naming the file itself, or an upload of it when the server may
    not read it (remote server, or a folder outside security.files.allowed_roots)."""
    from herald.cli.upload import send_local
    from herald.datasets.loader import is_url

    source = data["source"]
    if is_url(source):
        return c.emit("dataset.register", data)
    return send_local(
        c,
        Path(source),
        lambda src: c.emit("dataset.register", {**data, "source": src}),
        kind="dataset",
        mode=upload,
    )


def _tags(items: list[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--tag expects key=value, got {item!r}")
        tags[key] = value
    return tags


def _wait(c: Any, correlationid: str, after: int, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    with out.status("registering…"):
        while time.monotonic() < deadline:
            events = c.messages(
                type=["dataset.registered", "job.failed"],
                correlationid=correlationid,
                after=after,
            )
            final = [e for e in events if not e.data.get("will_retry")]
            if final:
                return final[0]
            time.sleep(0.3)
    return None


def _show(d: dict[str, Any]) -> None:
    state = "new version" if d.get("created", True) else "identical content: existing version"
    out.print(f"[bold green]{d['uri']}[/] ({state})")
    stats = d.get("stats", {})
    tokens = stats.get("tokens", {})
    pii = {k: v for k, v in d.get("pii", {}).items() if v}
    rows = [
        ("format", d["format"]),
        ("rows", f"{d['rows']} " + ", ".join(f"{k} {v}" for k, v in d.get("splits", {}).items())),
        (
            f"tokens/row ({stats.get('tokenizer', '?')})",
            f"min {tokens.get('min')}  mean {tokens.get('mean')}  p95 {tokens.get('p95')}  "
            f"max {tokens.get('max')}",
        ),
        ("PII found", ", ".join(f"{k} {v}" for k, v in pii.items()) or "none"),
        ("fingerprint", d["fingerprint"]),
        ("artifact", d["artifact_uri"]),
    ]
    print_fields(out, rows)


@app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="Data set name (letters, digits, . _ -).")],
    source: Annotated[
        str, typer.Argument(help="Local .jsonl/.json/.csv/.tsv/.parquet file or URL.")
    ],
    format: Annotated[
        str, typer.Option("--format", help="auto, chat, instruction or text.")
    ] = "auto",
    validation_fraction: Annotated[
        float, typer.Option("--validation-fraction", help="Share of rows held out, [0, 1).")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the train/validation split.")] = 42,
    dedupe: Annotated[
        bool, typer.Option("--dedupe/--no-dedupe", help="Drop exact duplicates.")
    ] = True,
    redact_pii: Annotated[
        bool, typer.Option("--redact-pii", help="Replace e-mails, phones, cards, IBANs, IPs.")
    ] = False,
    description: Annotated[str, typer.Option(help="Free text stored with the version.")] = "",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="key=value (repeatable).")] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="Model whose tokenizer counts tokens (default: words).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the result.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 600.0,
    upload: Annotated[
        bool | None,
        typer.Option(
            "--upload/--no-upload",
            help="Send a local file's content to the server (default: only when the server "
            "is remote or may not read the path).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
) -> None:
    """Validate, clean and register a data set file as a new version (dataset.register)."""
    from herald.client import Client

    if format not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    data: dict[str, Any] = {
        "name": name,
        "source": _source(source),
        "format": format,
        "validation_fraction": validation_fraction,
        "seed": seed,
        "dedupe": dedupe,
        "redact_pii": redact_pii,
        "description": description,
        "tags": _tags(tag or []),
    }
    if tokenizer:
        data["tokenizer"] = tokenizer
    try:
        with Client() as c:
            env = _publish(c, data, upload)
            if not wait:
                if as_json:
                    print(json.dumps(env.model_dump(mode="json")))
                else:
                    out.print(f"published {env.id} (flow {env.correlationid})")
                return
            result = _wait(c, env.correlationid, env.seq or 0, timeout)
    except HeraldError as exc:
        _fail(exc.message)
        return
    if result is None:
        _fail(
            f"no result within {timeout:g} s; follow it with: "
            f"herald events --follow --correlation-id {env.correlationid}"
        )
    if result.type == "job.failed":
        _fail(f"data set {name!r} was not registered: {result.data['error']}")
    if as_json:
        print(json.dumps(result.data))
    else:
        _show(result.data)
