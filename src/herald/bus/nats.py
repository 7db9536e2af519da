"""NATS JetStream as the bus, PostgreSQL as the source of truth.

``NatsEventLog(database_url, bus_url)`` is the PostgreSQL event log (events, cursors, dedupe
rows, dead letters, jobs all stay in PostgreSQL, committed atomically) plus:

* an **outbox relay**: the event table itself is the outbox. Appends are serialised, so the
  sequence order is the commit order and "everything after ``published_seq``" is exactly what
  the bus has not yet acknowledged. One relay per database (a PostgreSQL session advisory lock
  on a connection of its own, so relaying does not count as owning sensors) publishes those events to a JetStream stream (subject
  ``<prefix>.events.<type>``, ``Nats-Msg-Id`` = event id) and moves ``published_seq`` (table
  ``herald_outbox_relay``, migration 0003) only after every PubAck. A crash between the
  database commit and the PubAck republishes; JetStream's duplicate window drops the repeat.
* **wake-ups from JetStream**: each process reads the stream through its own durable pull
  consumer and ``wait()`` returns when the bus delivers an event past the caller's position
  (local commits wake local waiters directly). When the bus is down ``wait()`` falls back to
  re-reading the head after its timeout, so sensors and workers slow down, never stop.
* **shared durable consumers** (:meth:`NatsEventLog.consume`): N processes pulling from one
  durable consumer share its messages; acks are explicit (after the handler returned, i.e.
  after its outcome committed), a long handler sends ``in_progress()`` heartbeats so
  ``ack_wait`` does not expire under it, and a handler that dies unacknowledged has its
  message redelivered to another process after ``ack_wait``.

Bus URL: ``nats://[user:pass@]host:4222[,host2:4222...][?stream=HERALD&prefix=herald
&replicas=1&ack_wait=30&duplicate_window=120&max_deliver=5]``.
See ``docs/decisions/0004-nats-bus.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from sqlalchemy import text

from herald.bus.postgres import PostgresEventLog
from herald.errors import BackendError, BackendUnavailable, ConfigurationError
from herald.messages.envelope import Envelope

log = logging.getLogger(__name__)

RELAY_LOCK = (0x48524C59, 1)  # the session advisory lock held by the one active relay
SEQ_HEADER = "Herald-Seq"
_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def subject_token(event_type: str) -> str:
    """``acme.order.placed`` stays as is; characters NATS subjects reserve become ``_``."""
    parts = [_TOKEN.sub("_", p) or "_" for p in event_type.split(".")]
    return ".".join(parts)


@dataclass(frozen=True)
class BusConfig:
    """The parsed ``HERALD_BUS_URL``."""

    servers: list[str]
    stream: str = "HERALD"
    prefix: str = "herald"
    replicas: int = 1
    ack_wait_s: float = 30.0
    duplicate_window_s: float = 120.0
    max_deliver: int = 5
    relay_batch: int = 512
    connect_timeout_s: float = 2.0
    safe_url: str = field(default="", compare=False)

    @classmethod
    def parse(cls, url: str) -> BusConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("nats", "tls"):
            raise ConfigurationError(
                f"bus URL {url!r} is not a NATS URL; use nats://host:4222 (HERALD_BUS_URL)"
            )
        hosts = [h.strip() for h in parts.netloc.split(",") if h.strip()]
        if not hosts:
            raise ConfigurationError(f"bus URL {url!r} names no server; use nats://host:4222")
        creds = ""
        if "@" in hosts[0]:
            creds, hosts[0] = hosts[0].rsplit("@", 1)
            creds += "@"
        servers = [f"{parts.scheme}://{creds}{h}" for h in hosts]
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        known = {
            "stream",
            "prefix",
            "replicas",
            "ack_wait",
            "duplicate_window",
            "max_deliver",
            "relay_batch",
            "connect_timeout",
        }
        unknown = sorted(set(q) - known)
        if unknown:
            raise ConfigurationError(
                f"bus URL {url!r}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        safe_netloc = ",".join([("***@" if creds else "") + hosts[0], *hosts[1:]])
        safe = urlunsplit((parts.scheme, safe_netloc, parts.path, parts.query, ""))
        try:
            cfg = cls(
                servers=servers,
                stream=q.get("stream", cls.stream),
                prefix=q.get("prefix", cls.prefix),
                replicas=int(q.get("replicas", cls.replicas)),
                ack_wait_s=float(q.get("ack_wait", cls.ack_wait_s)),
                duplicate_window_s=float(q.get("duplicate_window", cls.duplicate_window_s)),
                max_deliver=int(q.get("max_deliver", cls.max_deliver)),
                relay_batch=int(q.get("relay_batch", cls.relay_batch)),
                connect_timeout_s=float(q.get("connect_timeout", cls.connect_timeout_s)),
                safe_url=safe,
            )
        except ValueError as exc:
            raise ConfigurationError(f"bus URL {safe!r}: bad option value ({exc})") from None
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cfg.stream):
            raise ConfigurationError(f"bus URL {safe!r}: stream must be [A-Za-z0-9_-]{{1,64}}")
        if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", cfg.prefix):
            raise ConfigurationError(f"bus URL {safe!r}: prefix must be dotted [A-Za-z0-9_-]")
        if cfg.replicas not in (1, 3, 5):
            raise ConfigurationError(f"bus URL {safe!r}: replicas must be 1, 3 or 5")
        if cfg.ack_wait_s <= 0 or cfg.max_deliver < 1 or cfg.relay_batch < 1:
            raise ConfigurationError(
                f"bus URL {safe!r}: ack_wait > 0, max_deliver >= 1 and relay_batch >= 1 please"
            )
        return cfg

    @property
    def events_subject(self) -> str:
        return f"{self.prefix}.events.>"

    def subject(self, event_type: str) -> str:
        return f"{self.prefix}.events.{subject_token(event_type)}"


Handler = Callable[[Envelope], Awaitable[None]]


def _stream_missing(exc: BaseException) -> bool:
    """A publish found no stream for its subject (or the stream is gone)."""
    from nats.js.errors import NoStreamResponseError, NotFoundError

    return isinstance(exc, NoStreamResponseError | NotFoundError)


class NatsEventLog(PostgresEventLog):
    """PostgreSQL event log whose changes travel over NATS JetStream."""

    def __init__(self, url: str, bus_url: str, **_options: Any) -> None:
        if not url.split("://", 1)[0].startswith("postgres"):
            raise ConfigurationError(
                f"the NATS bus ({bus_url.split('?', 1)[0]}) needs PostgreSQL as the database "
                "(HERALD_DATABASE_URL=postgresql://...), which stays the source of truth; "
                f"got {url.split('://', 1)[0]}://"
            )
        try:
            import nats  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendUnavailable(
                'the NATS bus needs nats-py: pip install "herald[nats]"'
            ) from exc
        super().__init__(url)
        self.bus = BusConfig.parse(bus_url)
        self.bus_url = self.bus.safe_url
        self.node = uuid.uuid4().hex[:12]
        self._nc: Any = None
        self._js: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._relay_wake: asyncio.Event | None = None
        self._db_head = 0
        self._db_head_lock = threading.Lock()
        self._closing = False
        self._consumers: list[BusConsumer] = []
        self._relay_conn: Any = None  # psycopg.Connection holding RELAY_LOCK
        self._relay_owned = False
        self._relay_guard = threading.Lock()
        self.relayed = 0  # events this process published (and got a PubAck for)
        self.bus_connected = False

    # lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._relay_wake = asyncio.Event()
        self._closing = False
        await self._connect()
        try:
            await super().start()
        except BaseException:
            await self._nc.close()
            raise
        self._db_head = self._head
        self._tasks = [
            asyncio.create_task(self._relay_loop(), name="herald-nats-relay"),
            asyncio.create_task(self._wake_loop(), name="herald-nats-wake"),
        ]

    async def _connect(self) -> None:
        import nats

        hint = (
            f"cannot reach NATS at {self.bus_url}: is nats-server running with -js (JetStream) "
            "and reachable from here? Check HERALD_BUS_URL"
        )

        async def disconnected() -> None:
            self.bus_connected = False
            if not self._closing:
                log.warning("NATS connection to %s lost; reconnecting", self.bus_url)

        async def reconnected() -> None:
            self.bus_connected = True
            log.info("NATS connection to %s restored", self.bus_url)
            self._poke_relay()

        async def error(exc: Exception) -> None:
            if not self._closing:
                log.debug("NATS: %s", exc)

        try:
            self._nc = await nats.connect(
                servers=self.bus.servers,
                connect_timeout=max(1, round(self.bus.connect_timeout_s)),
                allow_reconnect=True,
                # at start: try each server twice, then fail with a clear error; once connected
                # (below) reconnect for ever, so workers ride out a bus outage
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
                name=f"herald-{self.node}",
            )
        except Exception as exc:
            raise BackendError(f"{hint} ({type(exc).__name__}: {exc})") from None
        self._nc.options["max_reconnect_attempts"] = -1
        self.bus_connected = True
        self._js = self._nc.jetstream(timeout=5.0)
        try:
            await self._js.account_info()
        except Exception as exc:
            await self._nc.close()
            raise BackendError(
                f"NATS at {self.bus_url} answers but JetStream is not available "
                f"({type(exc).__name__}: {exc}); start nats-server with -js"
            ) from None
        try:
            await self._ensure_stream()
        except Exception as exc:
            await self._nc.close()
            raise BackendError(
                f"cannot create JetStream stream {self.bus.stream!r} on {self.bus_url} "
                f"(replicas={self.bus.replicas}): {type(exc).__name__}: {exc}; a replicated "
                "stream needs that many JetStream servers in the cluster"
            ) from None

    async def _ensure_stream(self) -> None:
        """Create the stream, or bring its configuration up to date."""
        from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

        cfg = StreamConfig(
            name=self.bus.stream,
            subjects=[self.bus.events_subject],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            num_replicas=self.bus.replicas,
            duplicate_window=self.bus.duplicate_window_s,
        )
        try:
            await self._js.stream_info(self.bus.stream)
        except Exception:
            await self._js.add_stream(cfg)
        else:
            await self._js.update_stream(cfg)

    async def close(self) -> None:
        self._closing = True
        for c in list(self._consumers):
            await c.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.to_thread(self._drop_relay_conn)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._js.delete_consumer(self.bus.stream, self._wake_durable), 2.0
                )
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
        await super().close()

    @property
    def _wake_durable(self) -> str:
        return f"herald-wake-{self.node}"

    # change notification: local commits and LISTEN feed the relay; the bus feeds waiters -----
    def committed(self, head: int) -> None:
        """Local commits (writer thread): wake the relay and this process's waiters."""
        self._db_committed(head)
        super().committed(head)

    def _db_committed(self, head: int) -> None:
        with self._db_head_lock:
            if head <= self._db_head:
                return
            self._db_head = head
        self._poke_relay()

    def _poke_relay(self) -> None:
        loop, ev = self._loop, self._relay_wake
        if loop is not None and ev is not None and not loop.is_closed():
            loop.call_soon_threadsafe(ev.set)

    def _notified(self, head: int) -> None:
        """Other processes' commits (LISTEN/NOTIFY) only wake the relay; their wake-ups reach
        this process's waiters through JetStream."""
        self._db_committed(head)

    # the outbox relay ---------------------------------------------------------------------
    async def _relay_loop(self) -> None:
        assert self._relay_wake is not None
        backoff = 0.1
        owned_at = 0.0
        owned = False
        cursor = 0
        while not self._closing:
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._relay_wake.wait(), 1.0)
                self._relay_wake.clear()
                now = time.monotonic()
                if not owned or now - owned_at > 1.0:
                    was = owned
                    owned = await asyncio.to_thread(self._own_relay)
                    owned_at = now
                    if owned and not was:
                        cursor = await self._relay_cursor()
                        log.info("outbox relay active in this process from event %d", cursor)
                if not owned:
                    continue
                cursor = await self._relay_pending(cursor)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closing:
                    return
                owned = False  # re-read the cursor before publishing again
                if _stream_missing(exc):  # the bus lost its storage: recreate the stream
                    with contextlib.suppress(Exception):
                        await self._ensure_stream()
                        log.warning("JetStream stream %s was missing; recreated", self.bus.stream)
                log.warning(
                    "outbox relay: %s: %s; retrying in %.1fs", type(exc).__name__, exc, backoff
                )
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                backoff = min(backoff * 2, 5.0)
                self._poke_relay()

    def _own_relay(self) -> bool:
        """Hold (or confirm) the relay lock on a session of its own; the database frees it when
        this process or its connection dies, and another process's relay takes over."""
        import psycopg

        with self._relay_guard:
            return self._own_relay_locked(psycopg)

    def _own_relay_locked(self, psycopg: Any) -> bool:
        try:
            if self._relay_conn is not None and self._relay_owned:
                self._relay_conn.execute("SELECT 1")  # the session, and with it the lock, lives
                return True
            if self._relay_conn is None:
                self._relay_conn = psycopg.connect(
                    self._dsn, autocommit=True, application_name="herald-outbox-relay"
                )
            row = self._relay_conn.execute(
                "SELECT pg_try_advisory_lock(%s::int4, %s::int4)", RELAY_LOCK
            ).fetchone()
        except psycopg.Error as exc:
            self._drop_relay_conn_locked()
            raise BackendError(
                f"cannot take the outbox relay lock on {self.safe_url}: {exc}"
            ) from exc
        self._relay_owned = bool(row and row[0])
        return self._relay_owned

    def _drop_relay_conn(self) -> None:
        with self._relay_guard:
            self._drop_relay_conn_locked()

    def _drop_relay_conn_locked(self) -> None:
        conn, self._relay_conn, self._relay_owned = self._relay_conn, None, False
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()  # ends the session: PostgreSQL frees the relay lock

    async def _relay_cursor(self) -> int:
        def run() -> int:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO herald_outbox_relay (stream, published_seq, updated_us) "
                        "VALUES (:s, 0, 0) ON CONFLICT (stream) DO NOTHING"
                    ),
                    {"s": self.bus.stream},
                )
                row = conn.execute(
                    text("SELECT published_seq FROM herald_outbox_relay WHERE stream = :s"),
                    {"s": self.bus.stream},
                ).first()
                return int(row[0]) if row else 0

        return await asyncio.to_thread(run)

    async def _save_relay_cursor(self, seq: int) -> None:
        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE herald_outbox_relay SET published_seq = GREATEST(published_seq, "
                        ":q), updated_us = :u WHERE stream = :s"
                    ),
                    {"q": seq, "u": time.time_ns() // 1000, "s": self.bus.stream},
                )

        await asyncio.to_thread(run)

    async def _relay_pending(self, cursor: int) -> int:
        """Publish every event after ``cursor``; the cursor moves only after the PubAcks."""
        import json

        while not self._closing:
            events = await self.read(cursor, self.bus.relay_batch)
            if not events:
                return cursor
            pubs = [
                self._js.publish(
                    self.bus.subject(e.type),
                    json.dumps(e.to_cloudevent(), separators=(",", ":")).encode(),
                    timeout=5.0,
                    headers={"Nats-Msg-Id": e.id, SEQ_HEADER: str(e.seq)},
                )
                for e in events
            ]
            await asyncio.gather(*pubs)  # any failure: nothing moves, the batch is republished
            cursor = events[-1].seq or cursor
            await self._save_relay_cursor(cursor)
            self.relayed += len(events)
        return cursor

    async def relay_backlog(self) -> int:
        """Committed events the bus has not acknowledged yet (0 when caught up)."""

        def run() -> int:
            with self.engine.connect() as conn:
                row = conn.execute(
                    text(
                        "SELECT coalesce((SELECT max(seq) FROM herald_events), 0) - coalesce("
                        "(SELECT published_seq FROM herald_outbox_relay WHERE stream = :s), 0)"
                    ),
                    {"s": self.bus.stream},
                ).first()
                return int(row[0]) if row else 0

        return await asyncio.to_thread(run)

    # wake-ups from the bus ----------------------------------------------------------------
    async def _wake_loop(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        backoff = 0.2
        psub: Any = None
        while not self._closing:
            try:
                if psub is None:
                    psub = await self._js.pull_subscribe(
                        self.bus.events_subject,
                        durable=self._wake_durable,
                        stream=self.bus.stream,
                        config=ConsumerConfig(
                            deliver_policy=DeliverPolicy.NEW,
                            ack_policy=AckPolicy.ALL,
                            ack_wait=self.bus.ack_wait_s,
                            inactive_threshold=300.0,  # a dead process's consumer goes away
                            max_ack_pending=100_000,
                        ),
                    )
                try:
                    msgs = await psub.fetch(1024, timeout=2.0)
                except TimeoutError:
                    continue
                top = 0
                for m in msgs:
                    with contextlib.suppress(KeyError, TypeError, ValueError):
                        top = max(top, int((m.headers or {})[SEQ_HEADER]))
                if top:
                    super().committed(top)  # wakes this process's wait()ers
                if msgs:
                    await msgs[-1].ack()  # AckPolicy.ALL: acknowledges the whole batch
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closing:
                    return
                log.warning("NATS wake-up consumer: %s: %s; retrying", type(exc).__name__, exc)
                with contextlib.suppress(Exception):
                    if psub is not None:
                        await psub.unsubscribe()
                psub = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    # shared durable consumers ---------------------------------------------------------------
    def consume(
        self,
        durable: str,
        handler: Handler,
        *,
        types: Sequence[str] | None = None,
        ack_wait_s: float | None = None,
        max_deliver: int | None = None,
        batch: int = 64,
        concurrency: int = 1,
        deliver_new: bool = False,
    ) -> BusConsumer:
        """A consumer (not yet started) of the durable JetStream consumer ``durable``.

        Every process that consumes the same ``durable`` shares its messages: each message goes
        to one of them, and to another if it is not acknowledged within ``ack_wait_s``.
        ``handler`` is awaited per event; the message is acked when it returns, nak'ed with
        backoff when it raises, and terminated after ``max_deliver`` deliveries. Make the
        handler idempotent (e.g. commit an :class:`~herald.bus.base.Outcome`: a redelivered
        event then commits nothing) — delivery is at-least-once. With ``concurrency`` > 1 up
        to that many handlers of one fetched batch run at once (their commits group together;
        the order among them is not kept).
        """
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", durable):
            raise ConfigurationError(f"consumer name {durable!r}: use [A-Za-z0-9_-]{{1,128}}")
        c = BusConsumer(
            self,
            durable,
            handler,
            types=list(types) if types else None,
            ack_wait_s=ack_wait_s or self.bus.ack_wait_s,
            max_deliver=max_deliver or self.bus.max_deliver,
            batch=batch,
            concurrency=concurrency,
            deliver_new=deliver_new,
        )
        self._consumers.append(c)
        return c


class BusConsumer:
    """One process's share of a durable pull consumer; see :meth:`NatsEventLog.consume`."""

    def __init__(
        self,
        owner: NatsEventLog,
        durable: str,
        handler: Handler,
        *,
        types: list[str] | None,
        ack_wait_s: float,
        max_deliver: int,
        batch: int,
        concurrency: int = 1,
        deliver_new: bool = False,
    ) -> None:
        self.owner = owner
        self.durable = durable
        self.handler = handler
        self.types = types
        self.ack_wait_s = ack_wait_s
        self.max_deliver = max_deliver
        self.batch = batch
        self.concurrency = max(1, concurrency)
        self.deliver_new = deliver_new
        self.handled = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        await self._subscribe()  # fail fast with a clear error; reconnects happen in the loop
        self._task = asyncio.create_task(self._run(), name=f"herald-consumer:{self.durable}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self in self.owner._consumers:
            self.owner._consumers.remove(self)

    async def _subscribe(self) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        bus = self.owner.bus
        subjects = [bus.subject(t) for t in self.types] if self.types else [bus.events_subject]
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.NEW if self.deliver_new else DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            filter_subjects=subjects if len(subjects) > 1 else None,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
        )
        try:
            self._psub = await self.owner._js.pull_subscribe(
                subjects[0] if len(subjects) == 1 else "",
                durable=self.durable,
                stream=bus.stream,
                config=config,
            )
        except Exception as exc:
            raise BackendError(
                f"cannot open JetStream consumer {self.durable!r} on stream {bus.stream!r} at "
                f"{self.owner.bus_url}: {type(exc).__name__}: {exc}"
            ) from None
        return self._psub

    async def _run(self) -> None:
        psub: Any = self._psub
        backoff = 0.2
        while not self._stopping:
            try:
                if psub is None:
                    psub = await self._subscribe()
                try:
                    msgs = await psub.fetch(self.batch, timeout=1.0)
                except TimeoutError:
                    continue
                if self.concurrency == 1:
                    for m in msgs:
                        await self._handle(m)
                else:
                    limit = asyncio.Semaphore(self.concurrency)

                    async def limited(m: Any, limit: asyncio.Semaphore = limit) -> None:
                        async with limit:
                            await self._handle(m)

                    await asyncio.gather(*(limited(m) for m in msgs))
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return
                log.warning("consumer %s: %s: %s; retrying", self.durable, type(exc).__name__, exc)
                psub = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _heartbeat(self, msg: Any) -> None:
        """Tell JetStream the handler still works, so ``ack_wait`` does not expire under it."""
        while True:
            await asyncio.sleep(self.ack_wait_s / 3)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _handle(self, msg: Any) -> None:
        try:
            event = Envelope.model_validate_json(msg.data)
        except Exception as exc:
            log.error("consumer %s: undecodable message dropped: %s", self.durable, exc)
            await msg.term()
            return
        hb = asyncio.create_task(self._heartbeat(msg))
        try:
            await self.handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed += 1
            delivered = msg.metadata.num_delivered
            if delivered >= self.max_deliver:
                log.error(
                    "consumer %s: %s %s failed %d times, giving up: %s",
                    self.durable,
                    event.type,
                    event.id,
                    delivered,
                    exc,
                )
                await msg.term()
            else:
                log.warning(
                    "consumer %s: %s %s failed (delivery %d/%d): %s",
                    self.durable,
                    event.type,
                    event.id,
                    delivered,
                    self.max_deliver,
                    exc,
                )
                await msg.nak(delay=min(0.2 * 2 ** (delivered - 1), 30.0))
            return
        finally:
            hb.cancel()
        await msg.ack()
        self.handled += 1
