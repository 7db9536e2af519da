"""Regression (issue 13): a dashboard cookie captured before logout no longer works — neither on
the `herald up` that issued it nor on a `herald api` process sharing its HERALD_HOME."""

from __future__ import annotations

import re
from typing import Any

import httpx

KEY = "hk_logout_e2e_key_0123456789abcdef"


def login(c: httpx.Client) -> None:
    form = c.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None
    r = c.post(
        "/login",
        content=f"api_key={KEY}&csrf={csrf.group(1)}&next=/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 303, r.text


def test_logout_ends_a_captured_cookie_in_every_process(server_factory: Any) -> None:
    up = server_factory([], HERALD_API_KEY=KEY)
    up.start()
    api = server_factory([], command="api", home=up.home, HERALD_API_KEY=KEY)
    api.start()
    with httpx.Client(base_url=up.url, timeout=30) as user:
        login(user)
        captured = user.cookies["herald_session"]
        with httpx.Client(base_url=api.url, timeout=30) as thief:
            thief.cookies.set("herald_session", captured)
            assert thief.get("/v1/catalog").status_code == 200  # before logout: valid anywhere

            out = user.post("/logout", headers={"X-CSRF-Token": user.cookies["herald_csrf"]})
            assert out.status_code == 303

            replay = thief.get("/v1/catalog")
            assert replay.status_code == 401, replay.text
            assert "log in again" in replay.json()["error"]["message"]
        with httpx.Client(base_url=up.url, timeout=30) as thief:
            thief.cookies.set("herald_session", captured)
            assert thief.get("/v1/catalog").status_code == 401
            assert thief.get("/").headers["location"] == "/login"
