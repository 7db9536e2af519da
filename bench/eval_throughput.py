#!/usr/bin/env python
"""Items/s of Herald's evaluator vs lm-evaluation-harness on the same task and endpoint.

Both score the same generate_until task (the first N items of examples/eval/factual_qa.jsonl,
exact match) against the same OpenAI-compatible base URL (Herald's in-process gateway), in one
run. The harness runs with its default (``num_concurrent=1``) and with the same concurrency as
Herald; Herald runs with ``--concurrency``.

    python bench/eval_throughput.py                          # bundled SmolLM2 (llama.cpp)
    python bench/eval_throughput.py --target fake --delay-ms 20   # a slow remote endpoint
    python bench/eval_throughput.py --target /path/to/hf-folder  # transformers, batching
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from herald.evaluation.runner import EvaluationPlan, run_evaluation
from herald.evaluation.store import EvaluationStore
from herald.evaluation.suites import parse_suite
from herald.evaluation.targets import open_target, parse_target
from herald.settings import Settings

DATA = Path(__file__).resolve().parents[1] / "examples" / "eval" / "factual_qa.jsonl"


def suite(engine: dict[str, Any], n: int, concurrency: int) -> Any:
    return parse_suite(
        {
            "name": "bench-qa",
            "dataset": str(DATA),
            "limit": n,
            "generation": {"max_tokens": 16, "temperature": 0, "stop": ["\n"]},
            "engines": [engine],
            "concurrency": concurrency,
        }
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.target == "fake":
        spec = parse_target(
            "fake-endpoint",
            backend="fake",
            backend_options={"delay_s": args.delay_ms / 1000, "reply": "Paris"},
        )
    else:
        spec = parse_target(args.target)
    home = Path(tempfile.mkdtemp(prefix="herald-bench-eval-"))
    settings = Settings(home=home)
    store = EvaluationStore(home / "ev.db")
    results: dict[str, Any] = {}
    async with open_target(spec, settings=settings) as client:
        # warm-up: load the model once
        await client[0].chat([{"role": "user", "content": "hi"}], max_tokens=2, temperature=0)
        runs = [
            (
                "lm-eval (num_concurrent=1)",
                {"engine": "lm-eval", "options": {"auto": "generate_until", "num_concurrent": 1}},
                1,
            ),
            (
                f"lm-eval (num_concurrent={args.concurrency})",
                {
                    "engine": "lm-eval",
                    "options": {"auto": "generate_until", "num_concurrent": args.concurrency},
                },
                args.concurrency,
            ),
            (
                f"herald (concurrency={args.concurrency})",
                {"engine": "reference", "metrics": ["exact_match"]},
                args.concurrency,
            ),
        ]
        for label, engine, conc in runs:
            s = suite(engine, args.items, conc)
            started = time.perf_counter()
            ev = await run_evaluation(
                EvaluationPlan(f"b{len(results)}", s, spec, concurrency=conc),
                store,
                settings=settings,
                client=client,
            )
            wall = time.perf_counter() - started
            metric = next(iter(ev["metrics"].values()))
            results[label] = {
                "items": ev["done"],
                "seconds": round(wall, 2),
                "items_per_s": round(ev["done"] / wall, 2),
                "exact_match": metric["value"],
            }
            print(
                f"{label:32s} {ev['done']:4d} items {wall:7.2f} s "
                f"{ev['done'] / wall:7.2f} items/s  exact_match={metric['value']}"
            )
    base = results["lm-eval (num_concurrent=1)"]["items_per_s"]
    mine = results[f"herald (concurrency={args.concurrency})"]["items_per_s"]
    print(f"speed-up vs lm-eval default: {mine / base:.2f}x")
    return {
        "target": args.target,
        "delay_ms": args.delay_ms if args.target == "fake" else None,
        "items": args.items,
        "machine": f"{platform.machine()}, {platform.system()}",
        "results": results,
        "speedup_vs_lm_eval_default": round(mine / base, 2),
    }


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--target", default="smollm2-135m-instruct")
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--delay-ms", type=float, default=20.0, help="per-token delay (fake target)")
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args()
    out = asyncio.run(main(a))
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))
