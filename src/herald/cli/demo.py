"""``herald demo``: drive the closed loop on a running Herald (``herald up``) with small settings.

1. serves reference traffic (general-knowledge questions from ``examples/data``) and then live
   traffic on a new topic (the handbook questions of ``examples/rag``) through the real
   ``/v1/chat/completions`` of the bundled SmolLM2, and rates the live answers (``/v1/feedback``);
2. publishes ONE message, ``monitors.evaluate`` with a prompt-drift rule over those two windows;
3. follows the flow on the SSE stream as the sensors react: ``drift.detected`` →
   ``dataset.register`` (accepted traffic) → datasets job → ``finetune.requested`` → fine-tuning
   job (a few LoRA steps) → ``finetune.completed`` → ``model.registered`` → whatever the lifecycle
   sensors configured on the server do next (evaluation, promotion, deployments).
"""

from __future__ import annotations

import json
import time
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
DONE = {"model.registered"}
FAILED = {"retrain.skipped", "sensor.deadlettered", "evaluation.failed"}


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(1)


def _prompts(examples: Path, n: int) -> tuple[list[str], list[str]]:
    facts_file = examples / "data" / "facts-chat.jsonl"
    hand_file = examples / "rag" / "handbook-qa.jsonl"
    for f in (facts_file, hand_file):
        if not f.is_file():
            _fail(f"example data not found: {f} (pass --examples PATH to the repo's examples/)")
    facts = [
        json.loads(line)["messages"][0]["content"]
        for line in facts_file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    hand = [
        json.loads(line)["question"]
        for line in hand_file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return facts[:n], hand[:n]


def _summary(e: Any) -> str:
    d = e.data
    keys = (
        "name",
        "version",
        "uri",
        "rule",
        "value",
        "step",
        "loss",
        "reason",
        "decision",
        "error",
    )
    parts = [f"{k}={d[k]:.4g}" if isinstance(d.get(k), float) else f"{k}={d[k]}" for k in keys
             if d.get(k) is not None]  # fmt: skip
    if e.type == "job.started":
        parts.insert(0, f"job={d.get('name')}")
    return " ".join(parts)[:140]


@app.callback(invoke_without_command=True)
def demo(
    model: Annotated[str, typer.Option(help="Served model the traffic goes to.")] = (
        "smollm2-135m-instruct"
    ),
    requests: Annotated[int, typer.Option(min=30, max=39, help="Requests per window.")] = 30,
    max_steps: Annotated[int, typer.Option(min=1, help="Fine-tuning steps.")] = 3,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 1200,
    examples: Annotated[Path, typer.Option(help="The repo's examples/ folder.")] = ROOT
    / "examples",
) -> None:
    """Serve traffic, let a drift rule fire, and watch Herald retrain."""
    from herald.client import Client

    started = time.monotonic()
    ref_prompts, live_prompts = _prompts(examples, requests)
    try:
        client = Client()
        client.health()
    except HeraldError as exc:
        _fail(f"{exc.message} — start Herald first: herald up")
    with client:

        def chat(prompt: str) -> str:
            body = {"model": model, "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": 12, "temperature": 0}  # fmt: skip
            try:
                return str(client._request("POST", "/v1/chat/completions", json=body)["id"])
            except HeraldError as exc:
                _fail(f"chat request to {model!r} failed: {exc.message}")

        out.print(f"[bold]1/3[/] {len(ref_prompts)} reference requests to {model} (facts) …")
        t_ref0 = time.time()
        for p in ref_prompts:
            chat(p)

        time.sleep(2.0)
        out.print(
            f"[bold]    [/] {len(live_prompts)} live requests (handbook questions), rated 👍 …"
        )
        t_live0 = time.time()
        for p in live_prompts:
            rid = chat(p)
            client._request("POST", "/v1/feedback", json={"response_id": rid, "thumbs": "up"})
        t_live1 = time.time()
        rule = {
            "name": "demo-topic-drift",
            "metric": "prompt_embedding_drift",
            "model": model,
            "comparison": "<",
            "threshold": 0.01,
            "window": f"{t_live1 - t_live0 + 1.0:.3f}s",
            "reference_window": f"{t_live0 - t_ref0 + 4.5:.3f}s",
            "cooldown": "0s",
            "retrain": {"max_steps": max_steps, "micro_batch_size": 2, "sequence_len": 128,
                        "lora_r": 4, "lora_alpha": 8, "save_steps": max_steps,
                        "logging_steps": 1},
        }  # fmt: skip
        sent = client._request(
            "POST", "/v1/monitors/evaluate", json={"inline_rules": [rule], "at": t_live1 + 0.5}
        )["event"]
        cid = sent["correlationid"]
        out.print(f"[bold]2/3[/] published monitors.evaluate {sent['id']} (flow {cid})")
        out.print("[bold]3/3[/] following the flow …")
        after = max(int(sent.get("seq") or 1) - 1, 0)
        for e in client.stream(correlationid=cid, after=after):
            elapsed = time.monotonic() - started
            out.print(f"  {elapsed:7.1f}s  [cyan]{e.type:<24}[/] {escape(_summary(e))}")
            final_fail = e.type == "job.failed" and not e.data.get("will_retry")
            if e.type in FAILED or final_fail:
                _fail(f"the loop stopped at {e.type}: {_summary(e)} (herald flow {cid})")
            if e.type in DONE:
                break
            if elapsed > timeout:
                _fail(f"no model.registered after {timeout:.0f}s (herald flow {cid})")
    out.print(
        f"[bold green]done[/] in {time.monotonic() - started:.0f}s: drift → data set → "
        f"fine-tune → registered. Lineage: herald flow {cid}"
    )
