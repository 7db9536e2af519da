"""``herald demo``: ONE message drives the whole closed loop on a running Herald (``herald up``).

The CLI publishes ``demo.requested`` (the demo plugin, :mod:`herald.demo.sensors`, is loaded by
every Herald process) and prints the flow live from the SSE stream:

fine-tune the bundled SmolLM2 (a few LoRA steps) → register → evaluate (examples/eval/tiny) →
promote → deploy ``demo`` (canary rollout policy) → serve reference, then drifted traffic
through the real gateway, rated 👍 → drift detected → data set of accepted traffic → retrain →
register → evaluate → promote → canary beside the stable version → watch → rollout.

It ends with ``herald flow <id>``, the lineage from the first message to the rolled-out version.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from herald.errors import HeraldError

app = typer.Typer(help="Run the closed-loop demo against a running Herald.")
out = Console()
err = Console(stderr=True)
ROOT = Path(__file__).resolve().parents[3]
# the headline steps, printed as a header the first time they are reached
STAGES = {
    "finetune.requested": "fine-tune",
    "model.registered": "register",
    "evaluation.requested": "evaluate",
    "model.promoted": "promote",
    "deployment.requested": "deploy",
    "demo.traffic.served": "serve",
    "drift.detected": "drift",
    "dataset.register": "retrain: data set of accepted traffic",
    "deployment.watch": "canary: watch",
    "deployment.rolledout": "rollout",
}
QUIET = {"job.progressed", "job.heartbeat", "evaluation.progressed"}


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def _read_jsonl(path: Path, key: str, n: int) -> list[str]:
    if not path.is_file():
        _fail(f"example data not found: {path} (pass --examples PATH to the repo's examples/)")
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    values = [r["messages"][0]["content"] if key == "messages" else r[key] for r in rows]
    if len(values) < n:
        _fail(f"{path} has {len(values)} prompts; --requests {n} needs at least {n}")
    return [str(v) for v in values[:n]]


def _summary(e: Any) -> str:
    d = e.data
    keys = ("name", "version", "uri", "target", "decision", "rule", "value", "step", "loss",
            "mode", "requests", "canary_version", "weights", "reason", "error")  # fmt: skip
    parts = []
    for k in keys:
        v = d.get(k)
        if v is None or v == {} or v == "":
            continue
        parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    if e.type in ("job.started", "job.succeeded", "job.requested"):
        parts.insert(0, f"job={d.get('name')}")
    if e.type == "evaluation.completed":
        m = d.get("metrics", {}).get(d.get("primary_metric") or "", {})
        if isinstance(m, dict) and m.get("value") is not None:
            parts.insert(0, f"{d.get('primary_metric')}={m['value']:.3g}")
    return " ".join(parts)[:150]


def _bundled_present() -> str | None:
    """Why the bundled model cannot be used here, or None when it can."""
    try:
        from herald.models.bundled import bundled_gguf

        bundled_gguf("smollm2-135m-instruct")
    except HeraldError as exc:
        return exc.message
    return None


@app.callback(invoke_without_command=True)
def demo(
    name: Annotated[
        str | None,
        typer.Option(
            help="Registry model and deployment the demo creates; must be new (default: the "
            "first free one of demo, demo-2, demo-3, …)."
        ),
    ] = None,
    requests: Annotated[
        int,
        typer.Option(
            min=4,
            max=100,
            help="Requests per traffic window; at least the server's monitoring.min_samples "
            "(30 by default).",
        ),
    ] = 30,
    max_steps: Annotated[int, typer.Option(min=1, help="LoRA steps of each fine-tune.")] = 3,
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens per demo answer.")] = 8,
    eval_limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate only the first N suite items.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 1800,
    examples: Annotated[Path, typer.Option(help="The repo's examples/ folder.")] = ROOT
    / "examples",
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON lines.")] = (
        False
    ),
) -> None:
    """Fine-tune, evaluate, register, promote, deploy, serve, detect drift, retrain and roll
    out — from ONE demo.requested message, printed as it happens."""
    from herald.client import Client

    started = time.monotonic()
    examples = examples.resolve()
    dataset = examples / "data" / "facts-chat.jsonl"
    suite = examples / "eval" / "tiny.yaml"
    for f in (dataset, suite):
        if not f.is_file():
            _fail(f"example file not found: {f} (pass --examples PATH to the repo's examples/)")
    reference = _read_jsonl(dataset, "messages", requests)
    drifted = _read_jsonl(examples / "rag" / "handbook-qa.jsonl", "question", requests)
    why = _bundled_present()
    if why is not None:
        _fail(f"the demo fine-tunes the bundled SmolLM2, which is missing: {why}")
    try:
        client = Client()
        client.health()
    except HeraldError as exc:
        _fail(f"{exc.message} — start Herald first (make up, or herald up) and check HERALD_URL")
    with client:
        if name is None:
            name = next(n for n in _default_names() if _taken(client, n) is None)
        else:
            what = _taken(client, name)
            if what is not None:
                _fail(f"{what} named {name!r} exists already (an earlier demo?): pass --name NEW")
        data = {
            "name": name,
            "dataset": str(dataset),
            "suite": str(suite),
            "reference_prompts": reference,
            "drift_prompts": drifted,
            "gateway_url": client.base_url,
            "max_steps": max_steps,
            "max_tokens": max_tokens,
            **({"eval_limit": eval_limit} if eval_limit else {}),
        }
        try:
            sent = client._request(
                "POST",
                "/v1/messages",
                json={"type": "demo.requested", "data": data, "subject": name},
            )
        except HeraldError as exc:
            _fail(f"could not publish demo.requested: {exc.message}")
        cid = sent["correlationid"]
        out.print(f"[bold]published demo.requested[/] {sent['id']} — demo {name!r}, flow {cid}")
        last = _follow(client, cid, int(sent.get("seq") or 1), started, timeout, as_json)
    out.print(
        f"[bold green]done[/] in {time.monotonic() - started:.0f}s: fine-tune → evaluate → "
        f"register → promote → deploy → serve → drift → retrain → canary → rollout of "
        f"{last.get('version')}.\nLineage: [bold]herald flow {cid}[/]"
    )


def _default_names() -> Iterator[str]:
    yield "demo"
    yield from (f"demo-{i}" for i in itertools.count(2))


def _taken(client: Any, name: str) -> str | None:
    """What already uses ``name`` (a deployment or a registry model), or None when it is free."""
    for path, what in ((f"/v1/deployments/{name}", "a deployment"),
                       (f"/v1/registry/models/{name}", "a registry model")):  # fmt: skip
        try:
            client._request("GET", path)
        except HeraldError as exc:
            if exc.status != 404:
                _fail(f"cannot read {path}: {exc.message}")
            continue
        return what
    return None


def _follow(
    client: Any, cid: str, seq: int, started: float, timeout: float, as_json: bool
) -> dict[str, Any]:
    """Print the flow's events until demo.completed; returns its data."""
    import queue
    import threading

    events: queue.Queue[Any] = queue.Queue()

    def pump() -> None:
        try:
            for e in client.stream(correlationid=cid, after=max(seq - 1, 0)):
                events.put(e)
        except Exception as exc:  # the stream broke: say so in the main thread
            events.put(exc)

    threading.Thread(target=pump, name="herald-demo-stream", daemon=True).start()
    seen: set[str] = set()
    last_type, last_at = "demo.requested", time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            _fail(
                f"the demo did not finish in {timeout:.0f}s (last: {last_type}; herald flow {cid})"
            )
        if last_type == "monitors.evaluate" and time.monotonic() - last_at > 90:
            _fail(
                "no drift.detected 90 s after monitors.evaluate: the drift rule had too little "
                "data (each window needs the server's monitoring.min_samples requests: pass "
                f"--requests ≥ that; see herald monitors list) (herald flow {cid})"
            )
        try:
            e = events.get(timeout=2.0)
        except queue.Empty:
            continue
        if isinstance(e, Exception):
            _fail(f"lost the event stream: {e} (herald flow {cid})")
        last_type, last_at = e.type, time.monotonic()
        if as_json:
            # plain print: rich would wrap the line at the console width and read "[…]" as markup
            print(json.dumps({"t": round(elapsed, 1), "type": e.type, "data": e.data}), flush=True)
        elif e.type not in QUIET:
            stage = STAGES.get(e.type)
            if stage and stage not in seen:
                seen.add(stage)
                out.print(f"[bold]── {stage}[/]")
            out.print(f"  {elapsed:7.1f}s  [cyan]{e.type:<27}[/] {escape(_summary(e))}")
        if e.type == "demo.completed":
            if not e.data.get("ok"):
                _fail(f"the demo stopped: {e.data.get('reason')} (herald flow {cid})")
            return dict(e.data)
        if e.type == "job.failed" and not e.data.get("will_retry"):
            _fail(f"job {e.data.get('name')} failed: {e.data.get('error')} (herald flow {cid})")
        if e.type in ("sensor.deadlettered", "evaluation.failed", "deployment.failed"):
            _fail(f"the loop stopped at {e.type}: {_summary(e)} (herald flow {cid})")
