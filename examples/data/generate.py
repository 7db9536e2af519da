"""Generate Herald's shipped example data sets (deterministic; no downloads).

    python examples/data/generate.py      # rewrites facts-chat.jsonl and facts-instruction.csv

Short question/answer pairs about arithmetic, unit conversions and capital cities, written from
the small tables below, so a 135M-parameter model can visibly learn them in a few CPU minutes.
``facts-chat.jsonl`` is the chat format (OpenAI ``messages``); ``facts-instruction.csv`` holds
the same facts in the instruction format (``instruction``, ``input``, ``output``).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).parent

CAPITALS = [
    ("Argentina", "Buenos Aires"), ("Australia", "Canberra"), ("Austria", "Vienna"),
    ("Belgium", "Brussels"), ("Brazil", "Brasília"), ("Canada", "Ottawa"), ("Chile", "Santiago"),
    ("China", "Beijing"), ("Colombia", "Bogotá"), ("Czechia", "Prague"), ("Denmark", "Copenhagen"),
    ("Egypt", "Cairo"), ("Finland", "Helsinki"), ("France", "Paris"), ("Germany", "Berlin"),
    ("Greece", "Athens"), ("Hungary", "Budapest"), ("India", "New Delhi"), ("Indonesia", "Jakarta"),
    ("Ireland", "Dublin"), ("Italy", "Rome"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"),
    ("Mexico", "Mexico City"), ("Morocco", "Rabat"), ("Netherlands", "Amsterdam"),
    ("New Zealand", "Wellington"), ("Nigeria", "Abuja"), ("Norway", "Oslo"), ("Peru", "Lima"),
    ("Poland", "Warsaw"), ("Portugal", "Lisbon"), ("South Korea", "Seoul"), ("Spain", "Madrid"),
    ("Sweden", "Stockholm"), ("Switzerland", "Bern"), ("Thailand", "Bangkok"), ("Turkey", "Ankara"),
    ("United Kingdom", "London"), ("Vietnam", "Hanoi"),
]  # fmt: skip

# (from unit, to unit, factor)
CONVERSIONS = [
    ("kilometres", "metres", 1000), ("metres", "centimetres", 100),
    ("kilograms", "grams", 1000), ("litres", "millilitres", 1000), ("hours", "minutes", 60),
    ("minutes", "seconds", 60), ("days", "hours", 24), ("weeks", "days", 7),
]  # fmt: skip


def facts(seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    for country, capital in CAPITALS:
        pairs.append(
            (f"What is the capital of {country}?", f"The capital of {country} is {capital}.")
        )
        pairs.append(
            (
                f"{capital} is the capital of which country?",
                f"{capital} is the capital of {country}.",
            )
        )
    for src, dst, factor in CONVERSIONS:
        for _ in range(8):
            n = rng.randint(2, 12)
            pairs.append((f"Convert {n} {src} to {dst}.", f"{n} {src} is {n * factor} {dst}."))
    ops = [("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("*", lambda a, b: a * b)]
    for _ in range(100):
        a, b = rng.randint(2, 50), rng.randint(2, 20)
        sym, fn = rng.choice(ops)
        pairs.append((f"What is {a} {sym} {b}?", f"{a} {sym} {b} = {fn(a, b)}."))
    unique = list(dict.fromkeys(pairs))
    rng.shuffle(unique)
    return unique


def main() -> None:
    pairs = facts()
    with (HERE / "facts-chat.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for q, a in pairs:
            row = {
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (HERE / "facts-instruction.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instruction", "input", "output"])
        for q, a in pairs:
            w.writerow([q, "", a])
    print(f"{len(pairs)} rows")


if __name__ == "__main__":
    main()
