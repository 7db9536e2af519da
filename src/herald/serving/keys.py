"""API keys per client: scopes, rate limits (token bucket), stored hashed.

A key looks like ``hk_c_<id>_<secret>``; only the SHA-256 of the whole key is stored (keys are
256-bit random tokens, so a fast hash is enough) and the key is shown once, at creation.
Scopes: ``inference`` (the OpenAI data plane: ``/v1/models``, ``/v1/chat/completions``,
``/v1/completions``, ``/v1/embeddings``), ``batch`` (``/v1/batches``) and ``admin`` (every
route). The admin key (``HERALD_API_KEY`` / ``admin.key``) keeps full access and no limit.
Revocation reaches every process within :data:`CACHE_S` seconds.

Embedded the keys live in ``$HERALD_HOME/serving/state.db``; on PostgreSQL in the shared
database (table ``herald_api_keys``), so every ``herald api`` / ``herald serve`` pod knows them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import (
    Column,
    Float,
    MetaData,
    Table,
    Text,
    insert,
    select,
    update,
)

from herald.errors import HeraldError, NotFound
from herald.store.shared import StateStore, state_url

if TYPE_CHECKING:
    from herald.settings import ServingSettings, Settings

SCOPES = ("inference", "batch", "admin")
CACHE_S = 5.0
DATA_PLANE = ("/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings")
METADATA = MetaData()
api_keys = Table(
    "herald_api_keys",
    METADATA,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("hash", Text, nullable=False, unique=True),  # SHA-256 of the whole key, never the key
    Column("scopes", Text, nullable=False),  # JSON list
    Column("rate_per_minute", Float, nullable=False),
    Column("created_at", Text, nullable=False),  # ISO 8601, UTC
    Column("revoked_at", Text),
)
_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.scopes,
    api_keys.c.rate_per_minute,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
)


class InvalidKeyRequest(HeraldError):
    code = "invalid_request"
    status = 422


@dataclass(frozen=True)
class ClientKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    rate_per_minute: float
    created_at: str
    revoked_at: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "api_key",
            "name": self.name,
            "scopes": list(self.scopes),
            "rate_per_minute": self.rate_per_minute,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def required_scope(path: str) -> str:
    """The scope a path needs."""
    if any(path == p or path.startswith(p + "/") for p in DATA_PLANE):
        return "inference"
    if path == "/v1/batches" or path.startswith("/v1/batches/"):
        return "batch"
    return "admin"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class TokenBucket:
    """``rate`` requests per minute with a burst of ``burst``."""

    def __init__(self, rate_per_minute: float, burst: float | None = None) -> None:
        self.refill = rate_per_minute / 60.0
        self.capacity = burst if burst is not None else max(1.0, rate_per_minute / 6.0)
        self.tokens = self.capacity
        self.at = time.monotonic()

    def take(self) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.refill


class KeyStore(StateStore):
    """Client keys in the serving state database.

    ``KeyStore(path)`` keeps them in that SQLite file (embedded:
    ``$HERALD_HOME/serving/state.db``); ``KeyStore(url)`` in the database at ``url``
    (``postgresql://…``, table ``herald_api_keys``); :meth:`from_settings` picks the one every
    role shares, so a key created through the API pod authenticates on every serving pod.
    The database is opened on first use.
    """

    metadata = METADATA
    sqlite_file = "serving/state.db"
    what = "API key database"
    legacy_tables = {"api_keys": api_keys}  # older releases' unprefixed SQLite table
    eager = False

    def __init__(self, path: Path | str, settings: ServingSettings | None = None) -> None:
        self.default_rate = settings.rate_limit_per_minute if settings is not None else 600.0
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, ClientKey | None]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        super().__init__(path)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The keys on PostgreSQL when Herald runs on it, else in
        ``$HERALD_HOME/serving/state.db``."""
        return cls(state_url(settings, cls.default_path(settings.home)), settings.serving)

    def create(
        self, name: str, scopes: list[str] | None = None, rate_per_minute: float | None = None
    ) -> tuple[ClientKey, str]:
        """A new key; returns (record, the key itself — shown only now)."""
        name = name.strip()
        if not name or len(name) > 128:
            raise InvalidKeyRequest("a key needs a name of 1-128 characters")
        scopes = list(dict.fromkeys(scopes or ["inference"]))
        bad = [s for s in scopes if s not in SCOPES]
        if bad:
            raise InvalidKeyRequest(f"unknown scope(s) {bad}; known: {', '.join(SCOPES)}")
        rate = self.default_rate if rate_per_minute is None else float(rate_per_minute)
        if not math.isfinite(rate) or rate <= 0:
            raise InvalidKeyRequest("rate_per_minute must be a positive number")
        kid = secrets.token_hex(6)
        secret = f"hk_c_{kid}_{secrets.token_urlsafe(32)}"
        rec = ClientKey(kid, name, tuple(scopes), rate, datetime.now(UTC).isoformat())
        with self._lock, self._tx() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=kid,
                    name=name,
                    hash=_hash(secret),
                    scopes=json.dumps(scopes),
                    rate_per_minute=rate,
                    created_at=rec.created_at,
                )
            )
        return rec, secret

    def list(self, *, include_revoked: bool = False) -> list[ClientKey]:
        with self._tx() as conn:
            rows = conn.execute(select(*_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id))
            keys = [_row(r) for r in rows]
        return keys if include_revoked else [k for k in keys if k.revoked_at is None]

    def revoke(self, key_id: str) -> ClientKey:
        with self._lock, self._tx() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC).isoformat())
            )
            row = conn.execute(select(*_COLUMNS).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no API key with id {key_id!r} (see GET /v1/keys)")
        self._cache.clear()
        return _row(row)

    def lookup(self, key: str) -> ClientKey | None:
        """The active key record for ``key`` (cached for a few seconds)."""
        if not key.startswith("hk_c_"):
            return None
        h = _hash(key)
        now = time.monotonic()
        hit = self._cache.get(h)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        with self._tx() as conn:
            row = conn.execute(
                select(*_COLUMNS).where(api_keys.c.hash == h, api_keys.c.revoked_at.is_(None))
            ).first()
        rec = _row(row) if row is not None else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[h] = (now, rec)
        return rec

    async def authorize(self, key: str, path: str) -> tuple[int, str, dict[str, str]] | None:
        """None if ``key`` may call ``path`` now; else (status, message, headers)."""
        rec = self.lookup(key) if _cached(self, key) else await asyncio.to_thread(self.lookup, key)
        if rec is None:
            return 401, "invalid API key", {}
        scope = required_scope(path)
        if scope not in rec.scopes and "admin" not in rec.scopes:
            return (
                403,
                f"API key {rec.id!r} lacks the {scope!r} scope needed for {path} "
                f"(it has: {', '.join(rec.scopes)})",
                {},
            )
        bucket = self._buckets.get(rec.id)
        if bucket is None or bucket.refill != rec.rate_per_minute / 60.0:
            bucket = self._buckets[rec.id] = TokenBucket(rec.rate_per_minute)
        wait = bucket.take()
        if wait > 0:
            return (
                429,
                f"rate limit of {rec.rate_per_minute:g} requests per minute exceeded for key "
                f"{rec.id!r}; retry after {math.ceil(wait)} s",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return None


def _cached(store: KeyStore, key: str) -> bool:
    hit = store._cache.get(_hash(key))
    return hit is not None and time.monotonic() - hit[0] < CACHE_S


def _row(r: Any) -> ClientKey:
    return ClientKey(r[0], r[1], tuple(json.loads(r[2])), float(r[3]), r[4], r[5])
