"""PII detection recall and precision per kind on the labelled set
``bench/data/pii_labelled.jsonl`` (written by ``bench/data/make_pii_labelled.py``).

A detected span counts as found when it overlaps a labelled span of the same kind (``ipv4`` and
``ipv6`` are reported together as ``ip``); a labelled span counts as recalled when such a
detection overlaps it. Lines without labels are hard negatives: every detection in them is a
false positive. Results per split (``dev``: the lines the rules were written against;
``holdout``: never looked at while tuning) and for all lines.

    .venv/bin/python bench/pii_recall.py [--split all|dev|holdout] [--json] [--misses]
        [--before FILE]   # also score an older detector module (one with ``_RULES``), e.g.
                          # git show 5313f52:src/herald/datasets/pii.py > /tmp/pii_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from herald.security.pii import detector

Spans = Callable[[str], list[tuple[int, int, str]]]

DATA = Path(__file__).resolve().parent / "data" / "pii_labelled.jsonl"
KINDS = ("email", "phone", "credit_card", "iban", "ssn", "ip")
GROUP = {"ipv4": "ip", "ipv6": "ip"}


def load(path: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]


def current() -> Spans:
    d = detector()
    return lambda text: [(m.start, m.end, m.kind) for m in d.find(text)]


def before(path: str) -> Spans:
    """The spans of an older module's ``_RULES`` (regex, check), first kind wins."""
    spec = importlib.util.spec_from_file_location("pii_before", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["pii_before"] = mod
    spec.loader.exec_module(mod)

    def find(text: str) -> list[tuple[int, int, str]]:
        spans: list[tuple[int, int, str]] = []
        for kind, pattern, check in mod._RULES:
            for m in pattern.finditer(text):
                if check is not None and not check(m.group(0)):
                    continue
                if not any(s < m.end() and m.start() < e for s, e, _ in spans):
                    spans.append((m.start(), m.end(), kind))
        return spans

    return find


def evaluate(
    lines: list[dict[str, Any]], find: Spans | None = None
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Per kind: labelled, detected, recall, precision; and the misses / false positives."""
    find = find or current()
    gold_n: Counter[str] = Counter()
    pred_n: Counter[str] = Counter()
    recalled: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    misses: list[str] = []
    for line in lines:
        text = line["text"]
        gold = [(e["start"], e["end"], e["kind"]) for e in line["entities"]]
        pred = [(s, e, GROUP.get(k, k)) for s, e, k in find(text)]
        for s, e, k in gold:
            gold_n[k] += 1
            if any(ps < e and s < pe and pk == k for ps, pe, pk in pred):
                recalled[k] += 1
            else:
                misses.append(f"MISS {k:<11} {text[s:e]!r:<40} in {text!r}")
        for s, e, k in pred:
            pred_n[k] += 1
            if any(gs < e and s < ge and gk == k for gs, ge, gk in gold):
                correct[k] += 1
            else:
                misses.append(f"FP   {k:<11} {text[s:e]!r:<40} in {text!r}")
    table: dict[str, dict[str, float]] = {}
    for k in KINDS:
        table[k] = {
            "labelled": gold_n[k],
            "detected": pred_n[k],
            "recall": recalled[k] / gold_n[k] if gold_n[k] else float("nan"),
            "precision": correct[k] / pred_n[k] if pred_n[k] else 1.0,
        }
    return table, misses


def render(name: str, lines: list[dict[str, Any]], table: dict[str, dict[str, float]]) -> str:
    negatives = sum(1 for x in lines if not x["entities"])
    out = [
        f"{name}: {len(lines)} lines ({negatives} hard negatives)",
        "| kind | labelled | detected | recall | precision |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for k, r in table.items():
        out.append(
            f"| {k} | {r['labelled']:.0f} | {r['detected']:.0f} | {r['recall']:.3f} | "
            f"{r['precision']:.3f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=["all", "dev", "holdout"], default=None)
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--misses", action="store_true", help="list misses and false positives")
    ap.add_argument("--before", help="also score this older detector module (with _RULES)")
    args = ap.parse_args(argv)
    lines = load()
    splits = [args.split] if args.split else ["dev", "holdout", "all"]
    results: dict[str, Any] = {}
    for split in splits:
        part = lines if split == "all" else [x for x in lines if x["split"] == split]
        t0 = time.perf_counter()
        table, misses = evaluate(part)
        results[split] = {"lines": len(part), "table": table, "seconds": time.perf_counter() - t0}
        if args.json:
            continue
        print(render(split, part, table))
        print(f"({len(part)} lines scanned in {results[split]['seconds'] * 1000:.0f} ms)\n")
        if args.misses:
            print("\n".join(misses) + "\n")
        if args.before:
            old, _ = evaluate(part, before(args.before))
            results[split]["before"] = old
            if not args.json:
                print(render(f"{split}, before ({args.before})", part, old) + "\n")
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
