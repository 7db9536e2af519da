"""Throughput of the transformers serving backend at concurrency 1/4/16, with and without
dynamic batching, in the same run.

    python bench/serving_transformers.py [--model tiny|smollm2|PATH] [--tokens 32] [--rounds 2]

``tiny`` is the 2-layer test Llama (measures the batcher's own overhead); ``smollm2`` is the
bundled SmolLM2-135M-Instruct converted to safetensors (converted once, cached under
$HERALD_HOME/models; ~40 s the first time). Requests go through the backend port (the same
objects the gateway uses): N concurrent clients each run ``rounds`` greedy generations of
``--tokens`` tokens; we report generated tokens/s, requests/s and the mean batch size.
"No batching" is ``max_batch_size=1`` (requests decode one after another).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import report

from herald.serving.backends.base import GenerationRequest, SamplingParams
from herald.serving.backends.transformers import TransformersBackend

PROMPTS = [
    "The capital of France is",
    "Write one sentence about the sea:",
    "Explain in a few words what a compiler does:",
    "List three colours:",
]


def model_path(name: str) -> tuple[Path, str]:
    if name == "tiny":
        from herald.models.testing import tiny_llama

        return tiny_llama(Path(tempfile.mkdtemp()) / "tiny"), "tiny Llama (2 layers, hidden 32)"
    if name == "smollm2":
        from herald.models import bundled_gguf, ensure_converted

        return Path(ensure_converted(bundled_gguf())), "SmolLM2-135M-Instruct (fp32)"
    return Path(name), name


async def client(b: TransformersBackend, i: int, rounds: int, tokens: int) -> int:
    done = 0
    for r in range(rounds):
        prompt = PROMPTS[(i + r) % len(PROMPTS)]
        req = GenerationRequest(prompt, SamplingParams(max_tokens=tokens, temperature=0.0))
        async for d in b.generate(req):
            if d.usage is not None:
                done += d.usage.completion_tokens
    return done


async def measure(path: Path, batch: int, conc: int, rounds: int, tokens: int) -> dict[str, Any]:
    b = TransformersBackend(str(path), max_batch_size=batch, batch_window_ms=5)
    await b.load()
    try:
        await client(b, 0, 1, 4)  # warm-up
        b.batches.clear()
        t0 = time.perf_counter()
        counts = await asyncio.gather(*(client(b, i, rounds, tokens) for i in range(conc)))
        wall = time.perf_counter() - t0
    finally:
        await b.close()
    sizes = b.batches or [0]
    return {
        "concurrency": conc,
        "batching": "on" if batch > 1 else "off",
        "tokens/s": sum(counts) / wall,
        "requests/s": conc * rounds / wall,
        "mean batch": sum(sizes) / len(sizes),
        "wall s": wall,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--concurrency", default="1,4,16")
    args = ap.parse_args()
    path, label = model_path(args.model)
    rows = []
    for conc in [int(c) for c in args.concurrency.split(",")]:
        for batch in (1, 16):
            rows.append(await measure(path, batch, conc, args.rounds, args.tokens))
    report(
        f"transformers backend throughput — {label}, {args.tokens} tokens/request, greedy",
        rows,
        {"model": label, "tokens": args.tokens, "rounds": args.rounds},
    )


if __name__ == "__main__":
    asyncio.run(main())
