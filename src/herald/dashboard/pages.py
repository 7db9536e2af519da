"""The dashboard's HTTP edge: the login form, the app shell at ``/`` and the static assets."""

from __future__ import annotations

import secrets
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from herald.auth import check_key
from herald.dashboard.session import (
    CSRF_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Sessions,
    parse_cookies,
    same,
)
from herald.security.throttle import FailureThrottle, client_address

if TYPE_CHECKING:
    from herald.bootstrap import Herald

STATIC = Path(__file__).parent / "static"
MAX_FORM_BYTES = 8192

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Herald · log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/ui/static/css/style.css"></head>
<body class="login"><form method="post" action="/login" class="card login-card">
<h1>Herald</h1><p class="muted">Paste the admin API key (<code>$HERALD_HOME/admin.key</code>
or <code>HERALD_API_KEY</code>).</p>
{error}
<label>API key <input type="password" name="api_key" autocomplete="current-password"
 autofocus required></label>
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<button type="submit">Log in</button></form></body></html>
"""


def safe_next(value: str | None) -> str:
    """Only same-site relative paths: ``/...`` but never ``//host`` or ``/\\host``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(c in value for c in "\r\n\t"):
        return "/"
    return value


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)


def mount(
    app: FastAPI,
    h: Herald,
    sessions: Sessions,
    api_key: str,
    throttle: FailureThrottle | None = None,
) -> None:
    """Add ``/`` (the app shell), ``/login``, ``/logout`` and ``/ui/static`` to ``app``;
    failed logins count against the client address in ``throttle`` (429 once locked out)."""
    del h  # the pages read everything through the /v1 API
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="dashboard-static")
    shell = (STATIC / "index.html").read_text()

    def login_page(request: Request, error: str = "", status: int = 200) -> Response:
        token = secrets.token_urlsafe(24)
        nxt = safe_next(request.query_params.get("next"))
        err = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
        resp = _html(_LOGIN.format(error=err, csrf=token, next=escape(nxt)), status)
        resp.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path="/login",
        )
        return resp

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        cookies = parse_cookies(request.headers.get("cookie", ""))
        if await sessions.current(cookies.get(SESSION_COOKIE)) is None:
            return RedirectResponse("/login", status_code=303)
        return _html(shell)

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        return login_page(request)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            return login_page(request, "login form too large", 413)
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        expected = parse_cookies(request.headers.get("cookie", "")).get(LOGIN_CSRF_COOKIE, "")
        sent = form.get("csrf", "")
        if not expected or not same(sent, expected):
            return login_page(request, "the login form expired; try again", 403)
        client = client_address(request.scope)
        wait = throttle.retry_after(client) if throttle is not None else None
        if wait is None and not check_key(form.get("api_key", "").strip(), api_key):
            wait = throttle.failure(client, "login") if throttle is not None else None
            if wait is None:
                return login_page(request, "invalid API key", 401)
        if wait is not None:  # locked out: the key is not checked until the lockout ends
            resp = login_page(
                request, f"too many failed logins from this address: try again in {wait} s", 429
            )
            resp.headers["Retry-After"] = str(wait)
            return resp
        value, csrf = await sessions.issue()
        resp = RedirectResponse(safe_next(form.get("next")), status_code=303)
        secure = _secure(request)
        resp.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=sessions.max_age_s,
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        # readable by the page's JS, which echoes it in X-CSRF-Token (signed double submit)
        resp.set_cookie(
            CSRF_COOKIE, csrf, max_age=sessions.max_age_s, samesite="strict", secure=secure
        )
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return resp

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        denied = await sessions.authenticate(request.headers, request.method)
        if denied is not None and denied[0] == 403:
            return _html("<p>missing or wrong CSRF token</p>", 403)
        if denied is None:  # a live session with its CSRF token: end it server-side
            await sessions.end(parse_cookies(request.headers.get("cookie", "")).get(SESSION_COOKIE))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE)
        resp.delete_cookie(CSRF_COOKIE)
        return resp
