"""Dashboard sessions: a signed, expiring cookie in place of the Bearer key, plus CSRF tokens.

The session cookie (``herald_session``, HttpOnly, SameSite=Strict, Secure over https) holds
``<issued>.<nonce>.<mac>`` where ``mac`` is HMAC-SHA256 over ``issued.nonce`` keyed by a key
derived from the admin API key, so rotating the API key ends every session.

CSRF is a signed double-submit token: ``herald_csrf`` (readable by the page's JS) carries
HMAC(key, "csrf" + nonce) of the session; every unsafe request authenticated by the cookie must
echo it in the ``X-CSRF-Token`` header, and it must match both the cookie and the session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from http.cookies import SimpleCookie

SESSION_COOKIE = "herald_session"
CSRF_COOKIE = "herald_csrf"
LOGIN_CSRF_COOKIE = "herald_login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def parse_cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header authenticates nothing
        return {}
    return {k: m.value for k, m in jar.items()}


class Sessions:
    """Issues and checks dashboard session cookies and their CSRF tokens."""

    def __init__(self, api_key: str, *, max_age_s: int = 12 * 3600) -> None:
        self._key = hmac.new(api_key.encode(), b"herald-dashboard-session-v1", "sha256").digest()
        self.max_age_s = max_age_s

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> tuple[str, str]:
        """A new (session cookie value, CSRF token)."""
        issued = int(now if now is not None else time.time())
        nonce = secrets.token_urlsafe(18)
        body = f"{issued}.{nonce}"
        return f"{body}.{self._mac(body)}", self.csrf_for(nonce)

    def csrf_for(self, nonce: str) -> str:
        return self._mac("csrf." + nonce)

    def nonce(self, value: str | None, now: float | None = None) -> str | None:
        """The session's nonce when ``value`` is a valid, unexpired cookie; else None."""
        if not value or value.count(".") != 2:
            return None
        issued, nonce, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(f"{issued}.{nonce}")):
            return None
        if not issued.isdigit():
            return None
        age = (now if now is not None else time.time()) - int(issued)
        return nonce if 0 <= age <= self.max_age_s else None

    # -- the hook AuthMiddleware calls (herald.api.security.SessionAuth) --

    def is_public(self, path: str) -> bool:
        """Dashboard pages and assets handle their own auth (redirect to the login page)."""
        return path in ("/", "/login", "/logout") or path.startswith("/ui/")

    def authenticate(self, headers: Mapping[str, str], method: str) -> tuple[int, str, str] | None:
        """None when the session cookie is valid (and, for unsafe methods, the CSRF token);
        else (status, message, code)."""
        cookies = parse_cookies(headers.get("cookie", ""))
        nonce = self.nonce(cookies.get(SESSION_COOKIE))
        if nonce is None:
            return 401, "session expired or invalid: log in again at /login", "unauthorized"
        if method.upper() not in SAFE_METHODS:
            sent = headers.get(CSRF_HEADER, "")
            expected = self.csrf_for(nonce)
            if not (
                sent
                and hmac.compare_digest(sent, cookies.get(CSRF_COOKIE, ""))
                and hmac.compare_digest(sent, expected)
            ):
                return 403, "missing or wrong CSRF token (X-CSRF-Token header)", "csrf_failed"
        return None

    def has_session(self, headers: Mapping[str, str]) -> bool:
        return "cookie" in headers and SESSION_COOKIE in parse_cookies(headers["cookie"])
