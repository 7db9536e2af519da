"""Dashboard auth over ASGI: login form, signed session cookie, CSRF, and Bearer keys untouched."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import herald
from herald.api import create_app
from herald.dashboard.pages import safe_next
from herald.store.sessions import SessionStore, key_fingerprint

from .conftest import Env

KEY = "dash-key-0123456789abcdefghij"


class Note(herald.Message, type="dash.note.added"):
    text: str


@pytest.fixture
async def anon(env: Env) -> AsyncIterator[httpx.AsyncClient]:
    h = await env.start()
    h.catalog.register(Note)
    app = create_app(h, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


async def login(c: httpx.AsyncClient, key: str = KEY) -> httpx.Response:
    form = (await c.get("/login")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    return await c.post(
        "/login",
        content=f"api_key={key}&csrf={csrf.group(1)}&next=/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def test_pages_redirect_to_login_and_assets_are_served(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page = await anon.get("/login")
    assert page.status_code == 200 and 'name="api_key"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    js = await anon.get("/ui/static/js/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert (await anon.get("/v1/catalog")).status_code == 401


async def test_wrong_key_and_missing_csrf_are_refused(anon: httpx.AsyncClient) -> None:
    r = await login(anon, "nope")
    assert r.status_code == 401 and "invalid API key" in r.text
    assert "herald_session" not in anon.cookies
    anon.cookies.clear()
    r = await anon.post(
        "/login",
        content=f"api_key={KEY}&csrf=forged",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403 and "herald_session" not in r.headers.get("set-cookie", "")


async def test_session_cookie_authenticates_reads_and_csrf_guards_writes(
    anon: httpx.AsyncClient,
) -> None:
    r = await login(anon)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("herald_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session
    assert "Secure" not in session  # plain http here; set over https
    csrf_cookie = next(c for c in cookies if c.startswith("herald_csrf="))
    assert "HttpOnly" not in csrf_cookie  # the page's JS reads and echoes it
    assert (await anon.get("/")).status_code == 200
    assert (await anon.get("/v1/catalog")).status_code == 200

    body = {"type": "dash.note.added", "data": {"text": "hi"}}
    refused = await anon.post("/v1/messages", json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"
    wrong = await anon.post("/v1/messages", json=body, headers={"X-CSRF-Token": "x" * 64})
    assert wrong.status_code == 403
    token = anon.cookies["herald_csrf"]
    ok = await anon.post("/v1/messages", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 202, ok.text
    bad = await anon.post(
        "/v1/messages",
        json={"type": "dash.note.added", "data": {"text": 3}},
        headers={"X-CSRF-Token": token},
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == ["text"]

    out = await anon.post("/logout", headers={"X-CSRF-Token": token})
    assert out.status_code == 303
    assert (await anon.get("/v1/catalog")).status_code == 401


async def test_bearer_keys_work_as_before_and_ignore_cookies(anon: httpx.AsyncClient) -> None:
    await login(anon)
    r = await anon.get("/v1/catalog", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401  # a wrong Bearer key is not rescued by a cookie
    body = {"type": "dash.note.added", "data": {"text": "hi"}}
    anon.cookies.clear()
    r = await anon.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 202  # Bearer clients need no CSRF token


def test_sessions_expire_are_bound_to_the_key_and_store_only_hashes(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "sessions.db")
    key_id = key_fingerprint(KEY)
    sid, csrf = store.create(key_id, 60, now=1000)
    found = store.get(sid, key_id, now=1030)
    assert found is not None and found.csrf_matches(csrf) and not found.csrf_matches("x")
    assert store.get(sid, key_id, now=1061) is None  # expired
    assert store.get(sid, key_fingerprint("other-key"), now=1030) is None  # key rotation
    assert store.get(sid + "x", key_id, now=1030) is None and store.get("", key_id) is None
    assert sid.encode() not in (tmp_path / "sessions.db").read_bytes()
    store.create(key_id, 60, now=2000)  # issuing a session sweeps the expired ones
    assert store.count(now=2000) == 1 and not store.delete(sid)
    store.close()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/#/flow/x", "/#/flow/x"),
        ("//evil.example", "/"),
        ("/\\evil", "/"),
        ("https://evil.example", "/"),
        (None, "/"),
        ("/a\r\nSet-Cookie: x", "/"),
    ],
)
def test_login_redirects_stay_on_site(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected
