"""The prompt registry: store, rendering rules, REST (with messages) and CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from herald.api import create_app
from herald.bootstrap import Herald
from herald.bus.base import EventQuery
from herald.prompts import (
    PromptError,
    PromptNotFound,
    PromptRenderError,
    PromptStore,
    parse_ref,
)
from herald.settings import Settings

KEY = "k"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[PromptStore]:
    if request.param == "postgres":
        s = PromptStore(str(request.getfixturevalue("fresh_postgres_url")))
    else:
        s = PromptStore(tmp_path / "prompts" / "prompts.db")
    yield s
    s.close()


def test_versions_aliases_and_refs(store: PromptStore) -> None:
    v1 = store.register("answer", "Answer {{ question }}.", description="first")
    v2 = store.register(
        "answer", "Answer {{ question }} for {{ user }}.", variables=["user", "question"]
    )
    assert (v1.version, v2.version) == (1, 2) and v2.variables == ["question", "user"]
    assert v2.uri == "prompts:/answer/2"
    _, prev = store.promote("answer", "production", 1)
    assert prev is None
    _, prev = store.promote("answer", "production", 2)
    assert prev == 1
    assert store.get("prompts:/answer@production").version == 2
    assert store.get("prompts:/answer/1").template == "Answer {{ question }}."
    assert store.get("answer").version == 2 and store.get("prompts:/answer@latest").version == 2
    assert store.get("prompts:/answer/2").aliases == ["production"]
    assert [p.name for p in store.list()] == ["answer"]
    assert [v.version for v in store.versions("answer")] == [1, 2]
    assert parse_ref("prompts:/a.b/7") == ("a.b", 7, None)
    assert parse_ref("prompts:/a@prod") == ("a", None, "prod")
    with pytest.raises(PromptError, match="invalid prompt reference"):
        parse_ref("prompts:/a/b/c")
    with pytest.raises(PromptNotFound, match="no alias"):
        store.get("prompts:/answer@staging")
    with pytest.raises(PromptNotFound, match="version 9"):
        store.get("prompts:/answer/9")
    with pytest.raises(PromptNotFound):
        store.promote("answer", "production", 9)
    with pytest.raises(PromptError, match="alias"):
        store.promote("answer", "9bad", 1)
    store.delete_alias("answer", "production")
    with pytest.raises(PromptNotFound):
        store.delete_alias("answer", "production")


def test_register_validates(store: PromptStore) -> None:
    with pytest.raises(PromptError, match="name"):
        store.register("../x", "hi")
    with pytest.raises(PromptError, match="empty"):
        store.register("x", "  ")
    with pytest.raises(PromptError, match="syntax error on line 1"):
        store.register("x", "{{ oops ")
    with pytest.raises(PromptError, match="do not match"):
        store.register("x", "{{ a }}", variables=["a", "b"])


def test_render_checks_variables_in_a_sandbox(store: PromptStore) -> None:
    store.register("greet", "Hello {{ name }}{% for t in tags %} #{{ t }}{% endfor %}")
    assert store.render("greet", {"name": "Ada", "tags": ["x", "y"]}) == "Hello Ada #x #y"
    with pytest.raises(PromptRenderError, match="missing variable\\(s\\) tags"):
        store.render("greet", {"name": "Ada"})
    with pytest.raises(PromptRenderError, match="unknown variable\\(s\\) extra"):
        store.render("greet", {"name": "Ada", "tags": [], "extra": 1})
    store.register("evil", "{{ name.__class__.__mro__ }}")
    with pytest.raises(PromptRenderError, match=r"SecurityError|UndefinedError"):
        store.render("evil", {"name": "x"})
    store.register("mutate", "{{ items.append(1) }}")
    with pytest.raises(PromptRenderError, match="SecurityError"):
        store.render("mutate", {"items": []})


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Herald]]:
    h = Herald(
        Settings(
            home=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'h.db'}",
            serving={"bundled": False, "registry": False},
        )
    )
    await h.log.start()
    app = create_app(h, KEY, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://herald",
        headers={"Authorization": f"Bearer {KEY}"},
    ) as c:
        yield c, h
    await h.log.close()
    await h.serving.close()
    h.registry.close()


async def test_rest_registers_promotes_renders_and_emits(
    http: tuple[httpx.AsyncClient, Herald],
) -> None:
    c, h = http
    r = await c.post("/v1/prompts", json={"name": "qa", "template": "Q: {{ q }}"})
    assert r.status_code == 201, r.text
    assert r.json()["uri"] == "prompts:/qa/1" and r.json()["variables"] == ["q"]
    r = await c.post("/v1/prompts", json={"name": "qa", "template": "Question: {{ q }}"})
    assert r.json()["version"] == 2
    r = await c.post("/v1/prompts/qa/aliases", json={"alias": "production", "version": 1})
    assert r.status_code == 200 and r.json()["previous_version"] is None
    r = await c.post(
        "/v1/prompts/render", json={"ref": "prompts:/qa@production", "variables": {"q": "why?"}}
    )
    assert r.json()["text"] == "Q: why?" and r.json()["uri"] == "prompts:/qa/1"
    r = await c.post("/v1/prompts/render", json={"ref": "qa", "variables": {}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "prompt_render_error"
    assert "missing variable(s) q" in r.json()["error"]["message"]
    r = await c.get("/v1/prompts/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "prompt_not_found"
    r = await c.post("/v1/prompts", json={"name": "bad", "template": "{% if %}"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_prompt"
    listed = (await c.get("/v1/prompts")).json()["data"]
    assert [(p["name"], p["version"]) for p in listed] == [("qa", 2)]
    assert [v["aliases"] for v in (await c.get("/v1/prompts/qa")).json()["data"]] == [
        ["production"],
        [],
    ]
    assert (await c.get("/v1/prompts/qa/versions/2")).json()["template"] == "Question: {{ q }}"
    assert (await c.delete("/v1/prompts/qa/aliases/production")).json()["deleted"] is True
    events = await h.log.query(EventQuery(types=["prompt.registered", "prompt.promoted"]))
    assert [e.type for e in events] == ["prompt.registered"] * 2 + ["prompt.promoted"]
    assert events[-1].data["uri"] == "prompts:/qa@production"


def test_cli_talks_to_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from herald.cli.main import app as cli

    monkeypatch.setenv("HERALD_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HERALD_API_KEY", KEY)
    tpl = tmp_path / "t.j2"
    tpl.write_text("Hi {{ who }}")
    r = CliRunner().invoke(cli, ["prompts", "register", "hi", "-f", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "cannot read" in r.output
    r = CliRunner().invoke(cli, ["prompts", "list"])
    assert r.exit_code == 1 and "error" in r.output
