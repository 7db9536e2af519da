"""Request logs of the data plane: sampled, PII-redacted JSON lines under
``$HERALD_HOME/serving/requests/requests.jsonl`` (rotated by size), with a cost estimate per
request from a price table (USD per 1k prompt / completion tokens by model name or ``*``).

Each line: ``{"time", "request_id", "endpoint", "model", "version", "backend", "status",
"latency_s", "ttft_s", "prompt_tokens", "completion_tokens", "finish_reason", "stream",
"user", "error", "cost_usd", "input", "output"}`` — ``input``/``output`` only with
``include_text`` and always passed through :func:`herald.datasets.pii.redact_text`.
Monitoring and evaluation read them with :func:`read_request_log`.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter

from herald.datasets.pii import redact_text
from herald.serving.hooks import RequestContext, RequestRecord
from herald.serving.pool import ModelPool

if TYPE_CHECKING:
    from herald.settings import RequestLogSettings, Settings

log = logging.getLogger("herald.serving.requestlog")
FILE = "requests.jsonl"
MAX_TEXT = 8192  # characters of input / output kept per request
MAX_PENDING = 10_000


def estimate_cost(
    prices: dict[str, dict[str, float]], model: str, version: str, prompt: int, completion: int
) -> float | None:
    """USD for ``prompt`` + ``completion`` tokens (None when no price applies)."""
    price = prices.get(version) or prices.get(model) or prices.get("*")
    if not price:
        return None
    return round(
        prompt / 1000 * price.get("prompt", 0.0) + completion / 1000 * price.get("completion", 0.0),
        8,
    )


class RequestLog:
    """Hooks that capture, redact, sample and write one line per request."""

    def __init__(
        self,
        folder: Path,
        settings: RequestLogSettings,
        registry: CollectorRegistry | None = None,
        seed: int | None = None,
    ) -> None:
        self.folder = folder
        self.settings = settings
        self.path = folder / FILE
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}  # request id → captured text
        self._file: Any = None
        self.cost = Counter(
            "herald_request_cost_usd",
            "Estimated cost of served requests (price table serving.request_log.prices)",
            ["model_name", "version"],
            registry=registry or CollectorRegistry(),
        )

    @classmethod
    def install(
        cls, pool: ModelPool, settings: Settings, registry: CollectorRegistry | None = None
    ) -> RequestLog:
        rl = cls(
            settings.home / "serving" / "requests",
            settings.serving.request_log,
            registry=registry or pool.metrics.registry,
        )
        rl.attach(pool)
        return rl

    def attach(self, pool: ModelPool) -> None:
        pool.hooks.before_request.insert(0, self.before_request)  # sees the input as sent
        pool.hooks.on_stream_delta.insert(0, self.on_delta)  # sees every generated piece
        pool.hooks.on_request_log.append(self.record)

    # capture ---------------------------------------------------------------------------------
    async def before_request(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        s = self.settings
        if not s.enabled or (s.sample_rate < 1 and self._rng.random() >= s.sample_rate):
            ctx.extra["request_log"] = False
            return
        ctx.extra["request_log"] = True
        if len(self._pending) < MAX_PENDING:
            text = _input_text(body["request"]) if s.include_text else None
            self._pending[ctx.request_id] = {"input": text, "output": {}}

    def on_delta(self, ctx: RequestContext, index: int, text: str) -> str:
        cap = self._pending.get(ctx.request_id)
        if cap is not None and cap["input"] is not None:
            out: dict[int, str] = cap["output"]
            if len(out.get(index, "")) < MAX_TEXT:
                out[index] = out.get(index, "") + text
        return text

    def record(self, rec: RequestRecord) -> None:
        cap = self._pending.pop(rec.request_id, None)
        cost = estimate_cost(
            self.settings.prices, rec.model, rec.version, rec.prompt_tokens, rec.completion_tokens
        )
        if cost:
            self.cost.labels(rec.model, rec.version).inc(cost)
        if not self.settings.enabled:
            return
        if cap is None and (rec.status == 200 or ctx_sampled_out(self, rec)):
            return  # not sampled (every served request passed before_request)
        line: dict[str, Any] = {"time": time.time(), **asdict(rec), "cost_usd": cost}
        if rec.error:
            line["error"] = redact_text(rec.error)[0]
        if cap is not None and cap["input"] is not None:
            line["input"] = redact_text(cap["input"][:MAX_TEXT])[0]
            outputs = [redact_text(v[:MAX_TEXT])[0] for _, v in sorted(cap["output"].items())]
            line["output"] = outputs[0] if len(outputs) == 1 else outputs
        self._write(line)

    # files -----------------------------------------------------------------------------------
    def _write(self, line: dict[str, Any]) -> None:
        data = json.dumps(line, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            try:
                if self._file is None:
                    self.folder.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.write(data)
                self._file.flush()
                if self._file.tell() >= self.settings.max_file_bytes:
                    self._rotate()
            except OSError:
                log.exception("could not write the request log")

    def _rotate(self) -> None:
        self._file.close()
        self._file = None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.folder / f"requests-{stamp}-{time.time_ns() % 1_000_000:06d}.jsonl"
        self.path.rename(target)
        old = sorted(self.folder.glob("requests-*.jsonl"))
        for p in old[: max(0, len(old) - (self.settings.max_files - 1))]:
            p.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def ctx_sampled_out(rl: RequestLog, rec: RequestRecord) -> bool:
    """Sampling of requests refused before the hooks ran (unknown model, bad parameters)."""
    rate = rl.settings.sample_rate
    return rate < 1 and rl._rng.random() >= rate


def read_request_log(folder: Path) -> Iterator[dict[str, Any]]:
    """Every logged request, oldest file first."""
    files = sorted(folder.glob("requests-*.jsonl"))
    if (folder / FILE).is_file():
        files.append(folder / FILE)
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for raw in fh:
                if raw.strip():
                    yield json.loads(raw)


def _input_text(req: Any) -> str:
    messages = getattr(req, "messages", None)
    if messages:
        parts = []
        for m in messages:
            content = m.content if isinstance(m.content, str) else json.dumps(m.content)
            parts.append(f"{m.role}: {content or ''}")
        return "\n".join(parts)
    for name in ("prompt", "input"):
        v = getattr(req, name, None)
        if v is not None:
            return v if isinstance(v, str) else json.dumps(v)
    return ""
