"""Server-side dashboard sessions, shared by every process of a Herald.

The session cookie carries only a random id (256 bits); the store keeps the SHA-256 of that id,
the SHA-256 of the session's CSRF token, the times it was created and expires
(``security.auth.session_ttl_s``) and a fingerprint of the admin key that opened it. Every
request looks the session up (no per-process cache), so a logout — which deletes the row — ends
the session at once in every process that shares the database: the SQLite file
``$HERALD_HOME/auth/sessions.db`` on one host, the table ``herald_sessions`` of the shared
PostgreSQL database when Herald runs on one. Rotating the admin key ends every session (the
fingerprint no longer matches).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Column, Float, Index, MetaData, Table, Text, delete, insert, select

from herald.store.shared import StateStore

METADATA = MetaData()
sessions_table = Table(
    "herald_sessions",
    METADATA,
    Column("id_hash", Text, primary_key=True),  # SHA-256 of the cookie's id, never the id
    Column("csrf_hash", Text, nullable=False),  # SHA-256 of the session's CSRF token
    Column("key_id", Text, nullable=False),  # fingerprint of the admin key that logged in
    Column("created_at", Float, nullable=False),  # epoch seconds
    Column("expires_at", Float, nullable=False),
    Index("ix_herald_sessions_expires_at", "expires_at"),
)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def key_fingerprint(api_key: str) -> str:
    """A fingerprint of the admin key (HMAC, so the key cannot be found from it)."""
    return hmac.new(api_key.encode(), b"herald-dashboard-session-v2", "sha256").hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session (the row, without the secrets)."""

    id_hash: str
    csrf_hash: str
    created_at: float
    expires_at: float

    def csrf_matches(self, token: str) -> bool:
        return bool(token) and hmac.compare_digest(digest(token), self.csrf_hash)


class SessionStore(StateStore):
    """Dashboard sessions in the state database every role shares.

    ``SessionStore(path)`` keeps them in that SQLite file, ``SessionStore(url)`` in the database
    at ``url`` (table ``herald_sessions``); :meth:`from_settings` picks the one every process
    of this Herald shares. Opened on first use.
    """

    metadata = METADATA
    sqlite_file = "auth/sessions.db"
    what = "session database"
    eager = False

    def create(self, key_id: str, ttl_s: float, now: float | None = None) -> tuple[str, str]:
        """A new session; returns (the cookie's id, the CSRF token) — neither is stored."""
        now = time.time() if now is None else now
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        t = sessions_table
        with self._tx() as conn:
            conn.execute(delete(t).where(t.c.expires_at <= now))  # housekeeping, indexed
            conn.execute(
                insert(t).values(
                    id_hash=digest(sid),
                    csrf_hash=digest(csrf),
                    key_id=key_id,
                    created_at=now,
                    expires_at=now + ttl_s,
                )
            )
        return sid, csrf

    def get(self, sid: str, key_id: str, now: float | None = None) -> Session | None:
        """The live session of ``sid`` opened with the key ``key_id``; None when it was never
        issued, has expired, was logged out or belongs to a rotated key."""
        if not sid or len(sid) > 128:
            return None
        now = time.time() if now is None else now
        t = sessions_table
        with self._read() as conn:
            row = conn.execute(
                select(t.c.id_hash, t.c.csrf_hash, t.c.created_at, t.c.expires_at).where(
                    t.c.id_hash == digest(sid), t.c.key_id == key_id, t.c.expires_at > now
                )
            ).first()
        return None if row is None else Session(row[0], row[1], float(row[2]), float(row[3]))

    def delete(self, sid: str) -> bool:
        """End one session (logout); True when it existed."""
        if not sid or len(sid) > 128:
            return False
        t = sessions_table
        with self._tx() as conn:
            return bool(conn.execute(delete(t).where(t.c.id_hash == digest(sid))).rowcount)

    def delete_all(self) -> int:
        """End every session (e.g. after a suspected compromise); returns how many."""
        with self._tx() as conn:
            return int(conn.execute(delete(sessions_table)).rowcount)

    def count(self, now: float | None = None) -> int:
        """Live sessions."""
        now = time.time() if now is None else now
        t = sessions_table
        with self._read() as conn:
            return len(conn.execute(select(t.c.id_hash).where(t.c.expires_at > now)).all())
