"""Hostile values at the HTTP edge (issue 13, scope 5): each gets a clear 4xx in the route's
error format, nothing is stored, and the server keeps answering.

Driven through the real ASGI app over HTTP, on SQLite and PostgreSQL (where integers past
the store's columns used to overflow inside the database)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import herald
from herald.api import create_app
from herald.bootstrap import Herald

from .conftest import Env

KEY = "hostile-values-test-admin-key-0123456789"


class Reading(herald.Message, type="hostile.reading"):
    sensor: str
    value: float
    count: int = 0
    x: Any = None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def api(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "postgres":
        url = str(request.getfixturevalue("fresh_postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / 'h.db'}"
    env = Env(tmp_path, url)
    h = await env.start(
        serving={
            "models": {"fake": {"backend": "fake", "model": "fake-1"}},
            "bundled": False,
            "registry": False,
        }
    )
    app = create_app(h, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://herald",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield c
    await h.serving.close()
    await h.stop()


def _error(r: httpx.Response, status: int | tuple[int, ...], code: str | None = None) -> str:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, (r.status_code, r.text[:500])
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code"} and err["message"], err
    if code is not None:
        assert err["code"] == code, err
    assert "Traceback" not in r.text and "/tmp" not in err["message"]
    return str(err["message"])


async def _stored(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await api.get("/v1/messages", params={"type": "hostile.reading"})
    assert r.status_code == 200
    return list(r.json()["data"])


def _publish(data_json: str, subject: str = '"s"') -> str:
    return f'{{"type": "hostile.reading", "subject": {subject}, "data": {data_json}}}'


# raw JSON bodies: what a hostile client can write that Python's json module would take
HOSTILE_BODIES = [
    pytest.param(_publish('{"sensor": "a", "value": NaN}'), 422, "non_finite_number", id="NaN"),
    pytest.param(
        _publish('{"sensor": "a", "value": Infinity}'), 422, "non_finite_number", id="Infinity"
    ),
    pytest.param(
        _publish('{"sensor": "a", "value": -Infinity}'), 422, "non_finite_number", id="-Infinity"
    ),
    pytest.param(_publish('{"sensor": "a", "value": 1e400}'), 422, "non_finite_number", id="1e400"),
    pytest.param(
        _publish(f'{{"sensor": "a", "value": 1, "count": {2**63}}}'),
        422,
        "integer_out_of_range",
        id="2**63",
    ),
    pytest.param(
        _publish(f'{{"sensor": "a", "value": 1, "count": {-(2**63) - 1}}}'),
        422,
        "integer_out_of_range",
        id="-2**63-1",
    ),
    pytest.param(
        _publish(f'{{"sensor": "a", "value": 1, "count": {10**30}}}'),
        422,
        "integer_out_of_range",
        id="10**30",
    ),
    pytest.param(
        _publish('{"sensor": "a\\ud800", "value": 1}'), 422, "invalid_string", id="lone-surrogate"
    ),
    pytest.param(
        _publish('{"sensor": "a", "value": 1}', subject='"\\udfff"'),
        422,
        "invalid_string",
        id="surrogate-subject",
    ),
    pytest.param(
        _publish('{"\\ud83d": "a", "value": 1}'), 422, "invalid_string", id="surrogate-key"
    ),
    pytest.param(_publish('{"sensor": "a\\u0000b", "value": 1}'), 422, "invalid_string", id="NUL"),
    pytest.param(
        _publish('{"sensor": "a", "value": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}"),
        422,
        "json_too_deep",
        id="depth-5000",
    ),
    pytest.param(
        _publish('{"sensor": "a", "value": 1, "x": ' + "[" * 65 + "]" * 65 + "}"),
        422,
        "json_too_deep",
        id="depth-65",
    ),
    pytest.param(
        b'{"type": "hostile.reading", "data": {"sensor": "\xed\xa0\x80", "value": 1}}',
        400,
        "invalid_json",
        id="utf8-encoded-surrogate",
    ),
]


@pytest.mark.parametrize(("body", "status", "code"), HOSTILE_BODIES)
async def test_hostile_message_bodies_are_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, body: str | bytes, status: int, code: str
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    r = await api.post("/v1/messages", content=raw, headers={"Content-Type": "application/json"})
    _error(r, status, code)
    # the same value in a batch, and as CloudEvents JSON
    r = await api.post(
        "/v1/messages", content=b"[" + raw + b"]", headers={"Content-Type": "application/json"}
    )
    _error(r, (status, 422), None)
    assert await _stored(api) == []
    assert (await api.get("/healthz")).status_code == 200


async def test_the_same_message_with_finite_values_is_stored(api: httpx.AsyncClient) -> None:
    # the control: depth 64, 2**63-1, 1e308, paired surrogates (an emoji) are all fine
    data = '{"sensor": "\\ud83d\\ude00", "value": 1e308, "count": 9223372036854775807, "x": '
    body = _publish(data + "[" * 62 + "]" * 62 + "}")
    r = await api.post(
        "/v1/messages", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 202, r.text
    [stored] = await _stored(api)
    assert stored["data"]["sensor"] == "\U0001f600" and stored["data"]["value"] == 1e308
    assert stored["data"]["count"] == 2**63 - 1


async def test_a_body_without_content_type_is_checked_too(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/messages", content=_publish('{"sensor": "a", "value": NaN}').encode())
    _error(r, 422, "non_finite_number")
    assert await _stored(api) == []


# query and path parameters past the stores' integer columns
BIG = [2**63, -(2**63) - 1, 10**30]
HOSTILE_TARGETS = [
    *[pytest.param("GET", f"/v1/messages?after={n}", id=f"messages-after-{n}") for n in BIG],
    *[pytest.param("GET", f"/v1/jobs/j1/logs?after={n}", id=f"job-logs-after-{n}") for n in BIG],
    pytest.param("GET", f"/v1/evaluations/e1/samples?offset={2**63}", id="eval-offset"),
    pytest.param("GET", f"/v1/collections/c/documents?offset={2**63}", id="rag-offset"),
    pytest.param("GET", f"/v1/prompts/p/versions/{2**31}", id="prompt-version-int32"),
    pytest.param("GET", f"/v1/prompts/p/versions/{2**63}", id="prompt-version-int64"),
    pytest.param("GET", f"/v1/registry/models/m/versions/{2**31}", id="model-version"),
    pytest.param("GET", f"/v1/registry/models/m/versions/{10**30}/card", id="model-card"),
    pytest.param("GET", f"/v1/datasets/d/versions/{2**63}", id="dataset-version"),
    pytest.param("POST", f"/v1/registry/models/m/versions/{2**63}/promote", id="promote"),
    pytest.param("GET", "/v1/messages?subject=a%00b", id="NUL-in-query"),
    pytest.param("GET", "/v1/messages/abc%00def", id="NUL-in-path"),
    pytest.param("GET", "/v1/prompts/p%00/versions/1", id="NUL-in-name"),
]


@pytest.mark.parametrize(("method", "url"), HOSTILE_TARGETS)
async def test_hostile_parameters_are_422(api: httpx.AsyncClient, method: str, url: str) -> None:
    body = {"alias": "prod"} if method == "POST" else None
    r = await api.request(method, url, json=body)
    _error(r, 422)


def _cursor(key: list[Any], kind: str) -> str:
    import base64

    raw = json.dumps({"k": kind, "v": key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("url", "cursor"),
    [
        ("/v1/jobs", _cursor([2**63, "x"], "jobs")),
        ("/v1/jobs", _cursor([1, "a\u0000"], "jobs")),
        ("/v1/dead-letters", _cursor([-(2**63) - 1, "x"], "dead-letters")),
        ("/v1/evaluations", _cursor([float("nan"), "x"], "evaluations")),
        ("/v1/evaluations", _cursor([float("inf"), "x"], "evaluations")),
        ("/v1/registry/models/m/versions", _cursor([10**30], "versions:m")),
    ],
    ids=["jobs-2**63", "jobs-NUL", "dead-letters-min", "eval-NaN", "eval-inf", "versions-10**30"],
)
async def test_cursors_with_hostile_keys_are_422(
    api: httpx.AsyncClient, url: str, cursor: str
) -> None:
    r = await api.get(url, params={"cursor": cursor})
    _error(r, 422, "invalid_cursor")


# the OpenAI data plane answers with OpenAI error objects (param present), status 400
OPENAI = [
    pytest.param(
        "/v1/chat/completions",
        '{"model": "fake", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
        id="chat-NaN",
    ),
    pytest.param(
        "/v1/chat/completions",
        '{"model": "fake", "messages": [{"role": "user", "content": "hi\\ud800"}]}',
        id="chat-surrogate",
    ),
    pytest.param(
        "/v1/chat/completions",
        f'{{"model": "fake", "messages": [], "seed": {2**64}}}',
        id="chat-seed-2**64",
    ),
    pytest.param("/v1/completions", '{"model": "fake", "prompt": "a\\u0000"}', id="completion-NUL"),
    pytest.param(
        "/v1/embeddings",
        '{"model": "fake", "input": ' + "[" * 5000 + "]" * 5000 + "}",
        id="embeddings-depth",
    ),
    pytest.param(
        "/v1/completions", '{"model": "fake", "prompt": "x", "top_p": 1e400}', id="completion-1e400"
    ),
]


@pytest.mark.parametrize(("path", "body"), OPENAI)
async def test_openai_routes_refuse_hostile_json_with_openai_errors(
    api: httpx.AsyncClient, path: str, body: str
) -> None:
    r = await api.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error" and err["message"]


# prompt templates: the sandbox refuses, bounded, with a 400 naming the template error
TEMPLATES = [
    pytest.param("{% include 'secrets.txt' %}", "register", id="include"),
    pytest.param("{% import 'x.j2' as x %}{{ x }}", "register", id="import"),
    pytest.param("{% extends '/etc/passwd' %}", "register", id="extends"),
    pytest.param("{{ range(10**8)|list|length }}", "render", id="range-10**8"),
    pytest.param("{% for i in range(10**8) %}{% endfor %}", "render", id="for-range-10**8"),
    pytest.param('{{ "a"*10**9 }}', "render", id="str-times-10**9"),
    pytest.param("{{ 2**(10**9) }}", "render", id="pow"),
    pytest.param('{{ "a"|center(10**9) }}', "render", id="center"),
    pytest.param('{{ "{:>999999999}".format(1) }}', "render", id="format-width"),
    pytest.param(
        "{% macro f(s, n) %}{{ f(s~s, n-1) if n else s|length }}{% endmacro %}{{ f('a', 60) }}",
        "render",
        id="concat-doubling",
    ),
    pytest.param(
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "render",
        id="macro-fan-out",
    ),
    pytest.param("{{ 1/0 }}", "render", id="zero-division"),
    pytest.param("{{ ''.__class__.__mro__ }}", "render", id="dunder"),
    pytest.param("{{ x", "register", id="syntax"),
]


@pytest.mark.parametrize(("template", "stage"), TEMPLATES)
async def test_prompt_templates_are_sandboxed_and_bounded(
    api: httpx.AsyncClient, template: str, stage: str
) -> None:
    r = await api.post("/v1/prompts", json={"name": "evil", "template": template})
    if stage == "register":
        _error(r, 400)
        assert (await api.get("/v1/prompts/evil")).status_code == 404  # nothing stored
        return
    assert r.status_code == 201, r.text
    r = await api.post("/v1/prompts/render", json={"ref": "evil"})
    message = _error(r, 400, "prompt_render_error")
    assert "prompts:/evil/1" in message
    assert (await api.get("/healthz")).status_code == 200


async def test_a_plain_prompt_still_renders(api: httpx.AsyncClient) -> None:
    template = "{% for q in questions %}{{ loop.index }}. {{ q|upper }}\n{% endfor %}"
    r = await api.post("/v1/prompts", json={"name": "ok", "template": template})
    assert r.status_code == 201, r.text
    r = await api.post(
        "/v1/prompts/render", json={"ref": "ok", "variables": {"questions": ["a", "b"]}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "1. A\n2. B\n"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/messages", {"GET", "POST"}),
        ("PUT", "/v1/jobs", {"GET", "POST"}),
        ("POST", "/v1/catalog", {"GET"}),
        ("PATCH", "/v1/chat/completions", {"POST"}),
    ],
)
async def test_405_names_every_allowed_method(
    api: httpx.AsyncClient, method: str, path: str, allow: set[str]
) -> None:
    r = await api.request(method, path)
    _error(r, 405, "method_not_allowed")
    assert {m.strip() for m in r.headers["allow"].split(",")} == allow


async def test_openapi_documents_error_codes_and_bearer_security(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    op = spec["paths"]["/v1/messages"]["post"]
    assert {"400", "401", "403", "413", "422", "429"} <= set(op["responses"])
    error_ref = {"$ref": "#/components/schemas/Error"}
    assert op["responses"]["422"]["content"]["application/json"]["schema"] == error_ref
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_the_serving_role_app_has_the_same_edge(tmp_path: Any) -> None:
    """`herald serve` builds its app on role_app: the edge is there too."""
    from herald.api.serving_role import create_serving_app

    env = Env(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    app = create_serving_app(Herald(env.settings()), KEY)  # no lifespan: the edge answers first
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://herald",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    ) as c:
        body = '{"model": "fake", "messages": [{"role": "user", "content": "hi"}], "top_p": NaN}'
        r = await c.post("/v1/chat/completions", content=body.encode())
        assert r.status_code == 400 and r.json()["error"]["code"] == "non_finite_number"
        assert r.json()["error"]["param"] is None
        r = await c.post("/v1/embeddings", content=b'{"model": "m", "input": "a\\u0000"}')
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_string"
