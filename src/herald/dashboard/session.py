"""Dashboard sessions: a server-side session behind a random cookie id, plus CSRF tokens.

The session cookie (``herald_session``, HttpOnly, SameSite=Strict, Secure over https) holds only
a random 256-bit id; the session itself — a hash of that id, its expiry
(``security.auth.session_ttl_s``), a hash of its CSRF token and a fingerprint of the admin key —
lives in the :class:`~herald.store.sessions.SessionStore` every process shares. Logout
deletes it, so a captured cookie stops working at once everywhere; rotating the admin key ends
every session.

CSRF is a double-submit token bound to the session: ``herald_csrf`` (readable by the page's JS)
carries the session's token; every unsafe request authenticated by the cookie must echo it in
the ``X-CSRF-Token`` header, and it must match both the cookie and the session's stored hash.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Mapping
from http.cookies import SimpleCookie

from herald.store.sessions import Session, SessionStore, key_fingerprint

SESSION_COOKIE = "herald_session"
CSRF_COOKIE = "herald_csrf"
LOGIN_CSRF_COOKIE = "herald_login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXPIRED = "session expired, logged out or invalid: log in again at /login"


def parse_cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header authenticates nothing
        return {}
    return {k: m.value for k, m in jar.items()}


def same(a: str, b: str) -> bool:
    """Constant-time equality of two strings (any characters: a header decoded as latin-1 may
    hold non-ASCII ones, which ``hmac.compare_digest`` refuses on ``str``)."""
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


class Sessions:
    """Issues, checks and ends dashboard sessions (stored server-side) and their CSRF tokens."""

    def __init__(self, store: SessionStore, api_key: str, *, ttl_s: float = 12 * 3600) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._key_id = key_fingerprint(api_key)

    @property
    def max_age_s(self) -> int:
        """The cookie's Max-Age (the session's lifetime)."""
        return max(1, int(self.ttl_s))

    async def issue(self) -> tuple[str, str]:
        """A new session: (session cookie value, CSRF token)."""
        return await asyncio.to_thread(self.store.create, self._key_id, self.ttl_s)

    async def current(self, value: str | None) -> Session | None:
        """The live session of a cookie value; None when invalid, expired or logged out."""
        if not value:
            return None
        return await asyncio.to_thread(self.store.get, value, self._key_id)

    async def end(self, value: str | None) -> bool:
        """Log out: delete the session of a cookie value (every process sees it at once)."""
        if not value:
            return False
        return await asyncio.to_thread(self.store.delete, value)

    # -- the hook AuthMiddleware calls (herald.api.security.SessionAuth) --

    def is_public(self, path: str) -> bool:
        """Dashboard pages and assets handle their own auth (redirect to the login page)."""
        return path in ("/", "/login", "/logout") or path.startswith("/ui/")

    async def authenticate(
        self, headers: Mapping[str, str], method: str
    ) -> tuple[int, str, str] | None:
        """None when the session cookie is valid (and, for unsafe methods, the CSRF token);
        else (status, message, code)."""
        cookies = parse_cookies(headers.get("cookie", ""))
        session = await self.current(cookies.get(SESSION_COOKIE))
        if session is None:
            return 401, EXPIRED, "unauthorized"
        if method.upper() not in SAFE_METHODS:
            sent = headers.get(CSRF_HEADER, "")
            if not (
                sent and same(sent, cookies.get(CSRF_COOKIE, "")) and session.csrf_matches(sent)
            ):
                return 403, "missing or wrong CSRF token (X-CSRF-Token header)", "csrf_failed"
        return None

    def has_session(self, headers: Mapping[str, str]) -> bool:
        return "cookie" in headers and SESSION_COOKIE in parse_cookies(headers["cookie"])
