"""``herald finetune -f FILE.yaml [--set key=value] [--wait/--no-wait]``.

Validates the YAML locally against the ``finetune`` job's signature, publishes
``finetune.requested`` and (with ``--wait``, the default) follows the flow over SSE with a live
progress bar built from ``training.progressed`` messages, until the model is registered.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from herald.cli.common import err, out
from herald.cli.common import fail as _fail
from herald.errors import HeraldError

app = typer.Typer(
    help="Fine-tune a model from a YAML config (LoRA, QLoRA or full).",
    invoke_without_command=True,
    no_args_is_help=False,
)
REGISTER_WAIT_S = 30.0


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return (
        f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60:02d}:{s % 60:02d}"
    )


class _Live:
    """Turns the flow's messages into a Rich progress bar and status lines."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.completed: dict[str, Any] | None = None
        self.error: str | None = None
        self.job_id: str | None = None
        self.loss = "-"

    def handle(self, e: Any) -> bool:
        """Process one envelope; True when the flow reached an end (done or failed)."""
        d = e.data
        if e.type == "job.requested" and d.get("name") == "finetune":
            self.job_id = d.get("job_id")
            self._print(f"[dim]job {self.job_id} queued[/]")
        elif e.type == "job.started" and d.get("job_id") == self.job_id:
            self._print(f"[dim]attempt {d.get('attempt')} started on {d.get('worker')}[/]")
        elif e.type == "training.progressed":
            self._advance(d)
        elif e.type == "job.failed" and d.get("job_id") == self.job_id:
            if d.get("will_retry"):
                self._print(f"[yellow]attempt {d.get('attempt')} failed:[/] {d.get('error')}")
                self._print("[yellow]retrying (resumes from the last checkpoint)[/]")
            else:
                self.error = f"fine-tuning failed: {d.get('error')}"
                return True
        elif e.type == "job.cancelled" and d.get("job_id") == self.job_id:
            self.error = f"fine-tuning cancelled: {d.get('reason')}"
            return True
        elif e.type == "sensor.deadlettered":
            self.error = f"sensor {d.get('sensor')} failed: {d.get('error')}"
            return True
        elif e.type == "finetune.completed":
            self.completed = d
            return True
        return False

    def _advance(self, d: dict[str, Any]) -> None:
        if self.progress is None:
            return
        total = d.get("max_steps") or None
        if d.get("loss") is not None:  # an evaluation-only report keeps the last training loss
            self.loss = f"{d['loss']:.4f}"
        fields: dict[str, Any] = {
            "loss": self.loss,
            "tps": f"{d['tokens_per_second']:.0f}" if d.get("tokens_per_second") else "-",
            "eta": _fmt_eta(d.get("eta_s")),
        }
        if self.task is None:
            self.task = self.progress.add_task("training", total=total, **fields)
        self.progress.update(self.task, completed=d.get("step", 0), total=total, **fields)
        if d.get("eval_loss") is not None:
            self._print(f"step {d.get('step')}: eval_loss {d['eval_loss']:.4f}")

    def _print(self, line: str) -> None:
        (self.progress.console if self.progress else err).print(line, highlight=False)


def _registered(c: Any, correlationid: str, after: int) -> dict[str, Any] | None:
    """Wait (briefly) for the default sensor to register the result."""
    deadline = time.monotonic() + REGISTER_WAIT_S
    while time.monotonic() < deadline:
        found = c.messages(type=["model.registered"], correlationid=correlationid, after=after)
        if found:
            return dict(found[0].data)
        time.sleep(0.5)
    return None


@app.callback()
def finetune(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Option("--file", "-f", help="Fine-tuning config (YAML).", show_default=False)
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: --set max_steps=20 (value parsed as YAML)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow progress until the model is ready.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Validate FILE, publish finetune.requested and follow training live."""
    if ctx.invoked_subcommand is not None:
        return
    from herald.client import Client
    from herald.training.config import load_finetune_config

    try:
        config = load_finetune_config(file, set_ or [])
    except HeraldError as exc:
        _fail(exc.message)
    try:
        c = Client()
        env = c.emit("finetune.requested", config, subject=config["model_name"])
    except HeraldError as exc:
        _fail(exc.message)
    if not wait:
        if as_json:
            print(json.dumps(env.model_dump(mode="json")))
        else:
            out.print(
                f"[green]published[/] finetune.requested id={env.id} "
                f"correlationid={env.correlationid}",
                highlight=False,
            )
        return
    if not as_json:
        err.print(
            f"fine-tuning [bold]{config['model_name']}[/] from {config['base_model']} on "
            f"{config['dataset']} (flow {env.correlationid})",
            highlight=False,
        )
    progress = (
        None
        if as_json
        else Progress(
            TextColumn("[bold blue]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TextColumn("eta {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=err,
        )
    )
    live = _Live(progress)
    try:
        if progress is not None:
            progress.start()
        try:
            for e in c.stream(after=env.seq, correlationid=env.correlationid):
                if live.handle(e):
                    break
        finally:
            if progress is not None:
                progress.stop()
    except KeyboardInterrupt:
        err.print(
            f"stopped following; the job keeps running (job {live.job_id}). "
            f"Follow it with: herald events --follow --correlation-id {env.correlationid}"
        )
        raise typer.Exit(130) from None
    except HeraldError as exc:
        _fail(exc.message)
    if live.error:
        _fail(live.error)
    done = live.completed or {}
    registered = _registered(c, env.correlationid, env.seq or 0)
    if as_json:
        print(json.dumps({"finetune_completed": done, "model_registered": registered}))
        return
    _report(done, registered)


def _report(done: dict[str, Any], registered: dict[str, Any] | None) -> None:
    """The result lines; soft-wrapped so a URI a user copies stays on one line at any width."""
    metrics = done.get("metrics", {})
    shown = ", ".join(
        f"{k} {metrics[k]:.4g}"
        for k in ("train_loss", "eval_loss", "tokens_per_second")
        if k in metrics
    )
    out.print(
        f"[green]trained[/] {done.get('artifact_uri')} ({shown})", highlight=False, soft_wrap=True
    )
    if registered:
        out.print(
            f"[green]registered[/] {registered.get('uri')} ({registered.get('kind')})",
            highlight=False,
            soft_wrap=True,
        )
    else:
        out.print(
            "[yellow]not registered yet[/]: no model.registered within "
            f"{REGISTER_WAIT_S:.0f}s (is the registry sensor loaded?)",
            highlight=False,
        )
