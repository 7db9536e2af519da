"""Request logs of the data plane: sampled, PII-redacted JSON lines, with a cost estimate per
request from a price table (USD per 1k prompt / completion tokens by model name or ``*``).

Each line: ``{"time", "request_id", "endpoint", "model", "version", "backend", "status",
"latency_s", "ttft_s", "prompt_tokens", "completion_tokens", "finish_reason", "stream",
"user", "error", "cost_usd", "input", "output"}`` — ``input``/``output`` only with
``include_text``, redacted by the one PII policy (:mod:`herald.security.pii`, the kinds of
``security.pii.kinds``) before they are written — to the files and to the table alike — unless
an operator sets ``security.pii.log_raw``; ``error`` texts are always redacted.

Where the lines go is a small port (:class:`RequestLogSink`) with two adapters:

- :class:`FileRequestLog` (embedded): ``$HERALD_HOME/serving/requests/requests.jsonl``, rotated
  by size (``max_file_bytes``, ``max_files``); :func:`read_request_log` reads a folder.
- :class:`DatabaseRequestLog` (Herald on PostgreSQL): the shared table ``herald_requests``, so
  the lines written by ``herald serve`` pods are read by the monitors and the rollout judge of
  the workers and by the dashboard of the api pods. Writes never touch the request path: they go
  to a bounded queue that one background thread drains in batched inserts; a full queue or a
  failing database drops the record (counted in ``herald_request_log_dropped_total``, logged),
  it never blocks or fails a request. Rows older than ``retention_days`` or beyond the newest
  ``max_rows`` are deleted by the writers.

:func:`open_request_log` gives the sink of a deployment (the gateway's writer) and the reader a
Herald keeps open for its monitors, rollout judge and dashboard (``services.request_log``), whose
``read(since=…)`` takes the time window so that PostgreSQL does not ship the whole table.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    select,
    tuple_,
)

from herald.security.pii import LONGEST_MATCH, PLACEHOLDERS, Detector, detector
from herald.serving.hooks import RequestContext, RequestRecord
from herald.serving.pool import ModelPool
from herald.store.shared import is_postgres, open_state, safe_url

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from herald.settings import PIISettings, RequestLogSettings, Settings

log = logging.getLogger("herald.serving.requestlog")
FILE = "requests.jsonl"
MAX_TEXT = 8192  # characters of input / output kept per request
MAX_PENDING = 10_000
QUEUE_SIZE = 10_000  # lines waiting for the database writer (then dropped)
BATCH = 500  # lines per INSERT
PAGE = 5_000  # rows per SELECT when reading
PRUNE_EVERY_S = 300.0

METADATA = MetaData()
requests_t = Table(
    "herald_requests",
    METADATA,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("time", Float, nullable=False),
    Column("request_id", Text),
    Column("model", Text),
    Column("version", Text),
    Column("endpoint", Text),
    Column("status", Integer),
    Column("latency_s", Float),
    Column("line", Text, nullable=False),  # the whole JSON line
    Index("herald_requests_time", "time", "id"),
    Index("herald_requests_model_time", "model", "time"),
)


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


# the port ----------------------------------------------------------------------------------------
class RequestLogReader(Protocol):
    def read(
        self, since: float | None = None, until: float | None = None, model: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Logged requests with ``since <= time < until`` (either bound optional) of ``model``
        (all when None), oldest first."""
        ...


class RequestLogSink(RequestLogReader, Protocol):
    def write(self, line: dict[str, Any]) -> None:
        """Record one request; never raises and never blocks on I/O the caller waits for."""
        ...

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every line written so far is stored (False: still pending)."""
        ...

    def close(self) -> None: ...


def _keep(rec: Any, since: float | None, until: float | None, model: str | None) -> bool:
    if not isinstance(rec, dict):
        return False
    t = float(rec.get("time") or 0)
    if since is not None and t < since:
        return False
    if until is not None and t >= until:
        return False
    return model is None or rec.get("model") == model


# files (embedded) --------------------------------------------------------------------------------
class FileRequestLog:
    """JSON lines under ``folder``: ``requests.jsonl`` rotated by size into
    ``requests-<stamp>.jsonl`` (the newest ``max_files - 1`` rotated files are kept)."""

    def __init__(self, folder: Path, settings: RequestLogSettings) -> None:
        self.folder = folder
        self.settings = settings
        self.path = folder / FILE
        self._lock = threading.Lock()
        self._file: Any = None

    def write(self, line: dict[str, Any]) -> None:
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
                log.exception("could not write the request log %s", self.path)

    def _rotate(self) -> None:
        self._file.close()
        self._file = None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.folder / f"requests-{stamp}-{time.time_ns() % 1_000_000:06d}.jsonl"
        self.path.rename(target)
        old = sorted(self.folder.glob("requests-*.jsonl"))
        for p in old[: max(0, len(old) - (self.settings.max_files - 1))]:
            p.unlink(missing_ok=True)

    def flush(self, timeout: float = 10.0) -> bool:
        return True  # every write is flushed to the file before it returns

    def read(
        self, since: float | None = None, until: float | None = None, model: str | None = None
    ) -> Iterator[dict[str, Any]]:
        return read_files(self.folder, since=since, until=until, model=model)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_files(
    folder: Path,
    since: float | None = None,
    until: float | None = None,
    model: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The lines of the files under ``folder``, oldest file first; files last written before
    ``since`` are skipped, and so is a line being written right now (not yet whole)."""
    files = sorted(folder.glob("requests-*.jsonl"))
    if (folder / FILE).is_file():
        files.append(folder / FILE)
    for f in files:
        try:
            if since is not None and f.stat().st_mtime < since:
                continue
            fh = f.open(encoding="utf-8")
        except OSError:  # rotated away between the listing and the open
            continue
        with fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                if _keep(rec, since, until, model):
                    yield rec


def read_request_log(folder: Path) -> Iterator[dict[str, Any]]:
    """Every logged request of the files under ``folder``, oldest file first."""
    return read_files(folder)


# the shared database (PostgreSQL) ----------------------------------------------------------------
class DatabaseRequestLog:
    """Lines in the table ``herald_requests`` of ``url`` (PostgreSQL, or a SQLite URL).

    :meth:`write` only enqueues (bounded, ``queue_size``); a daemon thread started on the first
    write inserts them in batches, and :meth:`close` drains the queue before it returns."""

    def __init__(
        self,
        url: str,
        settings: RequestLogSettings,
        *,
        registry: CollectorRegistry | None = None,
        queue_size: int = QUEUE_SIZE,
        batch: int = BATCH,
        engine: Engine | None = None,
    ) -> None:
        self.url = url
        self.settings = settings
        self.batch = batch
        self._engine = engine if engine is not None else open_state(url, METADATA)
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=queue_size)
        self._cond = threading.Condition()
        self._pending = 0  # enqueued, not yet inserted or dropped
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune = 0.0
        self.written = 0
        self.dropped = 0
        self._dropped_logged = 0.0
        self.dropped_total = Counter(
            "herald_request_log_dropped_total",
            "Request-log lines dropped (queue full or database error)",
            ["reason"],
            registry=registry or CollectorRegistry(),
        )

    # writing -----------------------------------------------------------------------------------
    def write(self, line: dict[str, Any]) -> None:
        if self._stop.is_set():
            self._drop(1, "closed", None)
            return
        if self._thread is None:
            self._start()
        with self._cond:
            self._pending += 1
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()
            self._drop(1, "queue_full", None)

    def _start(self) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="herald-request-log", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            lines = [first]
            while len(lines) < self.batch:
                try:
                    lines.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._insert(lines)
                self.written += len(lines)
            except Exception as exc:  # the database is down, full, read-only, ...
                self._drop(len(lines), "db_error", exc)
            finally:
                with self._cond:
                    self._pending -= len(lines)
                    self._cond.notify_all()
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY_S
                try:
                    self.prune()
                except Exception as exc:
                    log.warning(
                        "request log: could not delete old rows of herald_requests: %s", exc
                    )

    def _insert(self, lines: list[dict[str, Any]]) -> None:
        rows = []
        for line in lines:
            status = line.get("status")
            latency = line.get("latency_s")
            rows.append(
                {
                    "time": float(line.get("time") or time.time()),
                    "request_id": _str(line.get("request_id")),
                    "model": _str(line.get("model")),
                    "version": _str(line.get("version")),
                    "endpoint": _str(line.get("endpoint")),
                    "status": int(status) if isinstance(status, int | float) else None,
                    "latency_s": float(latency) if isinstance(latency, int | float) else None,
                    "line": json.dumps(line, ensure_ascii=False, default=str),
                }
            )
        with self._engine.begin() as conn:
            conn.execute(requests_t.insert(), rows)

    def _drop(self, n: int, reason: str, exc: BaseException | None) -> None:
        self.dropped += n
        self.dropped_total.labels(reason).inc(n)
        now = time.monotonic()
        if exc is not None or now - self._dropped_logged >= 10.0:  # at most one line per 10 s
            self._dropped_logged = now
            log.warning(
                "request log: dropped %d record(s) (%s%s; %d dropped so far) — check the "
                "database at %s",
                n,
                reason,
                f": {exc}" if exc is not None else "",
                self.dropped,
                safe_url(self.url),
            )

    def prune(self, now: float | None = None) -> int:
        """Delete rows older than ``retention_days`` and beyond the newest ``max_rows``."""
        c = requests_t.c
        cutoff = (time.time() if now is None else now) - self.settings.retention_days * 86400.0
        newest = (
            select(c.id).order_by(c.id.desc()).offset(self.settings.max_rows).limit(1)
        ).scalar_subquery()
        with self._engine.begin() as conn:
            n = conn.execute(delete(requests_t).where(c.time < cutoff)).rowcount
            n += conn.execute(delete(requests_t).where(c.id <= newest)).rowcount
        return int(n)

    def flush(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Store what is queued (up to ``timeout`` seconds), then stop the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning(
                    "request log: %d record(s) not stored after %.0fs; dropped",
                    self._pending,
                    timeout,
                )
        self._engine.dispose()

    # reading -----------------------------------------------------------------------------------
    def read(
        self, since: float | None = None, until: float | None = None, model: str | None = None
    ) -> Iterator[dict[str, Any]]:
        c = requests_t.c
        q = select(c.id, c.time, c.line)
        if since is not None:
            q = q.where(c.time >= since)
        if until is not None:
            q = q.where(c.time < until)
        if model is not None:
            q = q.where(c.model == model)
        after: tuple[float, int] | None = None
        while True:  # keyset pages: no connection is held while the caller iterates
            page = q if after is None else q.where(tuple_(c.time, c.id) > tuple_(*after))
            with self._engine.connect() as conn:
                rows = conn.execute(page.order_by(c.time, c.id).limit(PAGE)).all()
            for row in rows:
                try:
                    rec = json.loads(row.line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict):
                    yield rec
            if len(rows) < PAGE:
                return
            after = (float(rows[-1].time), int(rows[-1].id))


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


# choosing the adapter ----------------------------------------------------------------------------
def request_log_folder(settings: Settings) -> Path:
    return settings.home / "serving" / "requests"


def open_request_log(
    settings: Settings, registry: CollectorRegistry | None = None
) -> FileRequestLog | DatabaseRequestLog:
    """A new sink for this deployment (the caller closes it): the shared ``herald_requests``
    table when Herald runs on PostgreSQL, else the files under ``$HERALD_HOME``."""
    url = settings.resolved_database_url
    if is_postgres(url):
        return DatabaseRequestLog(url, settings.serving.request_log, registry=registry)
    return FileRequestLog(request_log_folder(settings), settings.serving.request_log)


# the gateway's hooks -----------------------------------------------------------------------------
class RequestLog:
    """Hooks that capture, redact, sample and write one line per request."""

    def __init__(
        self,
        folder: Path | RequestLogSink,
        settings: RequestLogSettings,
        registry: CollectorRegistry | None = None,
        seed: int | None = None,
        pii: PIISettings | None = None,
    ) -> None:
        """``folder``: the files' folder (embedded) or any :class:`RequestLogSink`; ``pii``:
        the PII policy (default: every kind redacted)."""
        self.sink: RequestLogSink = (
            FileRequestLog(folder, settings) if isinstance(folder, Path) else folder
        )
        self.folder = folder if isinstance(folder, Path) else None
        self.settings = settings
        self.path = folder / FILE if isinstance(folder, Path) else None
        self._rng = random.Random(seed)
        self.pii: Detector = detector(pii.kinds if pii is not None else None)
        self.log_raw = pii is not None and pii.log_raw
        self._pending: dict[str, dict[str, Any]] = {}  # request id → captured text
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
        registry = registry or pool.metrics.registry
        rl = cls(
            open_request_log(settings, registry),
            settings.serving.request_log,
            registry,
            pii=settings.security.pii,
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
            line["error"] = self.pii.redact(rec.error)[0]
        if cap is not None and cap["input"] is not None:
            line["input"] = self._text(cap["input"])
            outputs = [self._text(v) for _, v in sorted(cap["output"].items())]
            line["output"] = outputs[0] if len(outputs) == 1 else outputs
        self._write(line)

    def _text(self, text: str) -> str:
        """Captured text as stored: cut to MAX_TEXT, redacted unless ``log_raw``."""
        if self.log_raw:
            return text[:MAX_TEXT]
        # find before cutting: a cut through a card number would leave half of it unmatched
        out: list[str] = []
        pos = 0
        for m in self.pii.find(text[: MAX_TEXT + LONGEST_MATCH]):
            if m.start >= MAX_TEXT:
                break
            out += (text[pos : m.start], PLACEHOLDERS[m.kind])
            pos = m.end
        out.append(text[pos:MAX_TEXT])
        return "".join(out)

    def _write(self, line: dict[str, Any]) -> None:
        self.sink.write(line)

    def flush(self, timeout: float = 10.0) -> bool:
        return self.sink.flush(timeout)

    def close(self) -> None:
        self.sink.close()


def ctx_sampled_out(rl: RequestLog, rec: RequestRecord) -> bool:
    """Sampling of requests refused before the hooks ran (unknown model, bad parameters)."""
    rate = rl.settings.sample_rate
    return rate < 1 and rl._rng.random() >= rate


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
