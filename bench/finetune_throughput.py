"""LoRA training throughput and peak memory: Herald's ``finetune`` job vs a bare PEFT loop.

Both sides train the same model with the same LoRA config on the same tokenized rows (the shipped
``examples/data/facts-chat.jsonl``), each in its own fresh subprocess so peak RSS is per side:

* ``herald`` — the ``finetune`` job function as a worker runs it (HF Trainer + PEFT, progress
  callback, run tracking in the registry, checkpoint at the end, artifact upload);
* ``bare``   — a hand-written loop: PEFT model, AdamW, cosine schedule, grad clipping.

Throughput is trained (non-padding) tokens per second of the training loop; ``wall_s`` is the
whole side end to end (model load, tokenization, training, saving). Sides alternate per repeat.

    .venv/bin/python bench/finetune_throughput.py                 # bundled SmolLM2-135M
    .venv/bin/python bench/finetune_throughput.py --model tiny --steps 40
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine

DATA = ROOT / "examples" / "data" / "facts-chat.jsonl"


def model_dir(kind: str, scratch: Path) -> Path:
    if kind == "tiny":
        from herald.models.testing import tiny_llama

        return tiny_llama(scratch / "tiny")
    from herald.models.bundled import bundled_gguf, ensure_converted

    return ensure_converted(bundled_gguf())  # cached under $HERALD_HOME/models after the first run


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lora_config(args: argparse.Namespace, model: Path) -> dict[str, Any]:
    return {
        "base_model": str(model),
        "dataset": str(DATA),
        "model_name": "bench-lora",
        "adapter": "lora",
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "target_modules": "all-linear",
        "learning_rate": 5e-4,
        "lr_scheduler": "cosine",
        "max_steps": args.steps,
        "micro_batch_size": args.batch,
        "gradient_accumulation_steps": 1,
        "sequence_len": 256,
        "save_steps": args.steps,  # one checkpoint, at the end, as a real run would keep
        "logging_steps": 1,
        "seed": 7,
    }


def side_herald(cfg: dict[str, Any], home: Path) -> dict[str, Any]:
    os.environ["HERALD_HOME"] = str(home)
    os.environ.pop("HERALD_DATABASE_URL", None)
    os.environ.pop("HERALD_ARTIFACTS_URL", None)
    from herald.training.job import finetune

    t0 = time.perf_counter()
    done = finetune(**cfg)
    wall = time.perf_counter() - t0
    m = done.metrics
    return {
        "tokens_per_second": m["tokens_per_second"],
        "train_s": m["train_runtime_s"],
        "final_loss": m["train_loss"],
        "wall_s": wall,
    }


def side_bare(cfg: dict[str, Any]) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    from herald.datasets import open_training_data
    from herald.training.data import Collator, as_records, ensure_chat_template, prepare

    t0 = time.perf_counter()
    torch.manual_seed(cfg["seed"])
    tok = AutoTokenizer.from_pretrained(cfg["base_model"])
    model = AutoModelForCausalLM.from_pretrained(cfg["base_model"], dtype=torch.float32)
    data = open_training_data(cfg["dataset"])
    ensure_chat_template(tok, data.format)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    examples, _ = prepare(data.train, data.format, tok, sequence_len=cfg["sequence_len"])
    model.config.use_cache = False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(
            model,
            LoraConfig(
                r=cfg["lora_r"],
                lora_alpha=cfg["lora_alpha"],
                lora_dropout=cfg["lora_dropout"],
                target_modules=cfg["target_modules"],
                task_type="CAUSAL_LM",
            ),
        )
    model.train()
    loader = torch.utils.data.DataLoader(
        as_records(examples),
        batch_size=cfg["micro_batch_size"],
        shuffle=True,
        collate_fn=Collator(int(tok.pad_token_id)),
        generator=torch.Generator().manual_seed(cfg["seed"]),
    )
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["learning_rate"], weight_decay=0.0)
    sched = get_cosine_schedule_with_warmup(opt, 0, cfg["max_steps"])
    tokens, step, loss_value = 0, 0, float("nan")
    start = time.perf_counter()
    while step < cfg["max_steps"]:
        for batch in loader:
            out = model(**batch)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
            loss_value = float(out.loss)
            step += 1
            if step >= cfg["max_steps"]:
                break
    train_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out_dir:
        model.save_pretrained(out_dir)
    return {
        "tokens_per_second": tokens / train_s,
        "train_s": train_s,
        "final_loss": loss_value,
        "wall_s": time.perf_counter() - t0,
    }


def run_side(side: str, args: argparse.Namespace, model: Path, scratch: Path, i: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--model-dir",
        str(model),
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--home",
        str(scratch / f"home-{side}-{i}"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--side", choices=["herald", "bare"], help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.side:  # child: one side, one JSON line on stdout
        cfg = lora_config(args, args.model_dir)
        res = side_herald(cfg, args.home) if args.side == "herald" else side_bare(cfg)
        res["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(res))
        return

    with tempfile.TemporaryDirectory(prefix="herald-bench-ft-") as tmp:
        scratch = Path(tmp)
        model = model_dir(args.model, scratch)
        runs: dict[str, list[dict[str, Any]]] = {"bare": [], "herald": []}
        for i in range(args.repeats):
            for side in ("bare", "herald") if i % 2 == 0 else ("herald", "bare"):
                runs[side].append(run_side(side, args, model, scratch, i))
                print(f"  repeat {i + 1} {side}: {runs[side][-1]}", file=sys.stderr)

    def med(side: str, key: str) -> float:
        return float(statistics.median(r[key] for r in runs[side]))

    summary = {
        side: {k: med(side, k) for k in ("tokens_per_second", "train_s", "wall_s", "peak_rss_mb")}
        for side in runs
    }
    ratio = summary["herald"]["tokens_per_second"] / summary["bare"]["tokens_per_second"]
    result = {
        "bench": "finetune_throughput",
        "machine": machine(),
        "model": args.model,
        "model_dir": str(model),
        "config": {
            "steps": args.steps,
            "micro_batch_size": args.batch,
            "lora_r": 8,
            "target_modules": "all-linear",
            "sequence_len": 256,
            "data": DATA.name,
        },
        "repeats": args.repeats,
        "runs": runs,
        "median": summary,
        "herald_vs_bare_tokens_per_second": ratio,
    }
    print(
        f"\nLoRA fine-tuning, {args.model}, {args.steps} steps x batch {args.batch} "
        f"(median of {args.repeats})"
    )
    print(f"{'side':8} {'tokens/s':>10} {'train s':>9} {'wall s':>8} {'peak RSS MB':>12}")
    for side in ("bare", "herald"):
        s = summary[side]
        print(
            f"{side:8} {s['tokens_per_second']:>10.1f} {s['train_s']:>9.1f} "
            f"{s['wall_s']:>8.1f} {s['peak_rss_mb']:>12.0f}"
        )
    print(f"herald / bare tokens/s: {ratio:.3f}")
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
