"""Guardrail overhead per request (µs), with no guardrails and with a typical rule set (PII
redaction on input and output, a blocked-term list, a regex), with and without PII in the prompt
and the reply, in the same run:

1. the guardrail hooks alone (input check + every generated piece + flush): the precise cost;
2. end to end through the gateway's chat service (fake backend, no HTTP), streamed and not:
   overhead = median with guardrails minus median without (noisy on a loaded machine).

    .venv/bin/python bench/guardrails.py [--requests 400] [--reply-words 150]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import pct, report

from herald.bootstrap import Herald
from herald.serving.chat.protocol import ChatCompletionRequest
from herald.serving.chat.service import ChatService
from herald.serving.common import parse_request
from herald.serving.guardrails.pipeline import GuardrailPipeline
from herald.serving.hooks import RequestContext
from herald.settings import Settings

RULES: list[dict[str, Any]] = [
    {"name": "pii", "type": "pii", "action": "redact"},
    {"name": "terms", "type": "terms", "terms": ["project nightingale", "codename x"]},
    {"name": "tickets", "type": "regex", "pattern": r"\bTCK-\d{4,}\b", "action": "redact"},
]
PII = (
    "Write to jane.roe@example.org or call +44 20 7946 0958; card 4111 1111 1111 1111, "
    "IBAN DE89 3704 0044 0532 0130 00, server 192.168.10.24."
)


def reply(words: int, pii: bool) -> str:
    base = "the quick brown fox jumps over a lazy dog and keeps running through the field"
    base_words = base.split(" ")
    text = " ".join(base_words[i % len(base_words)] for i in range(words))
    if pii:  # PII in the middle and at the end of the answer
        half = len(text) // 2
        text = f"{text[:half]} {PII} {text[half:]} {PII}"
    return text


async def herald(home: Path, rules: list[dict[str, Any]], words: int) -> Herald:
    models = {
        f"{kind}": {
            "backend": "fake",
            "model": kind,
            "options": {"reply": reply(words, kind == "pii")},
        }
        for kind in ("clean", "pii")
    }
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'h.db'}",
        serving={"bundled": False, "registry": False, "models": models, "guardrails": rules},
    )
    h = Herald(settings)
    await h.start()
    return h


async def one(svc: ChatService, body: bytes, stream: bool) -> float:
    started = time.perf_counter()
    resp, _ = await svc.create(parse_request(ChatCompletionRequest, body))
    if stream:
        async for _ in resp:  # type: ignore[union-attr]
            pass
    return time.perf_counter() - started


async def measure(h: Herald, model: str, stream: bool, n: int) -> list[float]:
    svc = ChatService(h.serving)
    prompt = ("Summarise this: " + PII) if model == "pii" else "Summarise the fox story."
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
            "max_tokens": 1024,
        }
    ).encode()
    for _ in range(max(5, n // 10)):  # warm-up
        await one(svc, body, stream)
    return [await one(svc, body, stream) for _ in range(n)]


async def hook_time(p: GuardrailPipeline, model: str, words: int, n: int) -> list[float]:
    """Seconds per request spent in the guardrail hooks alone: the input check of the parsed
    request, every generated piece (the fake backend's word pieces) and the final flush."""
    prompt = ("Summarise this: " + PII) if model == "pii" else "Summarise the fox story."
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]})
    pieces = re.findall(r"\s*\S+", reply(words, model == "pii"))
    out: list[float] = []
    for i in range(n + max(5, n // 10)):
        req = parse_request(ChatCompletionRequest, body.encode())
        ctx = RequestContext(f"r{i}", "chat", model)
        started = time.perf_counter()
        await p.before_request(ctx, {"request": req})
        for piece in pieces:
            p.on_delta(ctx, 0, piece)
        p.on_end(ctx, 0)
        out.append(time.perf_counter() - started)
    return out[-n:]  # without the warm-up


async def hooks_table(n: int, words: int) -> None:
    rows: list[dict[str, Any]] = []
    for model in ("clean", "pii"):
        pipes = {"none": GuardrailPipeline([]), "rules": GuardrailPipeline(RULES)}
        times: dict[str, list[float]] = {k: [] for k in pipes}
        for _ in range(5):  # interleaved rounds: load drift hits both alike
            for name, p in pipes.items():
                times[name] += await hook_time(p, model, words, n // 5)
        for name, t in times.items():
            rows.append(
                {
                    "guardrails": name,
                    "PII": "yes" if model == "pii" else "no",
                    "pieces": len(re.findall(r"\s*\S+", reply(words, model == "pii"))),
                    "median µs": statistics.median(t) * 1e6,
                    "p99 µs": pct(t, 99) * 1e6,
                    "µs per piece": statistics.median(t)
                    * 1e6
                    / len(re.findall(r"\s*\S+", reply(words, model == "pii"))),
                }
            )
    report(
        f"Guardrail hooks per chat request ({words}-word reply; rules: PII redact in/out, "
        "blocked terms, regex redact; streamed and non-streamed replies take the same path)",
        rows,
        {"requests": n, "reply_words": words},
    )


async def main(n: int, words: int) -> None:
    await hooks_table(n, words)
    with tempfile.TemporaryDirectory(prefix="herald-bench-gr-") as tmp:
        setups = {
            "none": await herald(Path(tmp) / "none", [], words),
            "rules": await herald(Path(tmp) / "rules", RULES, words),
        }
        try:
            rows: list[dict[str, Any]] = []
            for model in ("clean", "pii"):
                for stream in (False, True):
                    # interleave the two setups in rounds so drift hits both alike
                    times: dict[str, list[float]] = {k: [] for k in setups}
                    for _ in range(5):
                        for name, h in setups.items():
                            times[name] += await measure(h, model, stream, n // 5)
                    base = statistics.median(times["none"])
                    for name in setups:
                        med = statistics.median(times[name])
                        rows.append(
                            {
                                "guardrails": name,
                                "PII": "yes" if model == "pii" else "no",
                                "stream": "yes" if stream else "no",
                                "median µs": med * 1e6,
                                "p99 µs": pct(times[name], 99) * 1e6,
                                "overhead µs": (med - base) * 1e6,
                                "overhead %": 100 * (med - base) / base,
                            }
                        )
        finally:
            for h in setups.values():
                await h.stop()
    chars = len(reply(words, False))
    report(
        f"End to end through the chat service, with and without guardrails ({words}-word reply, {chars}+ chars; rules: "
        "PII redact in/out, blocked terms, regex redact)",
        rows,
        {"requests": n, "reply_words": words},
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=400, help="requests per cell")
    ap.add_argument("--reply-words", type=int, default=150, help="words in the reply")
    args = ap.parse_args()
    asyncio.run(main(args.requests, args.reply_words))
