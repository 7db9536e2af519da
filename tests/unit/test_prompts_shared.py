"""Prompt templates are state every role must see: on PostgreSQL they live in the shared
database (``herald_prompt_*``), so two Herald processes with different homes agree."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from herald.prompts import PromptStore, open_prompt_store
from herald.services import Services
from herald.settings import Settings


@pytest.mark.postgres
def test_two_homes_on_one_database_see_each_others_prompts(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    api = PromptStore.from_settings(
        Settings(home=tmp_path / "api", database_url=fresh_postgres_url)
    )
    serve = PromptStore.from_settings(
        Settings(home=tmp_path / "serve", database_url=fresh_postgres_url)
    )
    try:
        api.register("answer", "Answer {{ q }}.")
        serve.register("answer", "Answer {{ q }} briefly.")  # the next version, not a second 1
        api.promote("answer", "production", 2)
        assert serve.get("prompts:/answer@production").template == "Answer {{ q }} briefly."
        assert [v.version for v in api.versions("answer")] == [1, 2]
        assert [v.aliases for v in serve.versions("answer")] == [[], ["production"]]
        _, previous = serve.promote("answer", "production", 1)
        assert previous == 2
        assert api.render("prompts:/answer@production", {"q": "why"}) == "Answer why."
        serve.delete_alias("answer", "production")
        assert api.get("prompts:/answer/1").aliases == []
        # nothing was written under either home: the state is in the database
        assert not (tmp_path / "api" / "prompts").exists()
        assert not (tmp_path / "serve" / "prompts").exists()
    finally:
        api.close()
        serve.close()


@pytest.mark.postgres
def test_concurrent_registers_get_distinct_versions(fresh_postgres_url: str) -> None:
    stores = [PromptStore(fresh_postgres_url) for _ in range(3)]
    errors: list[BaseException] = []

    def work(s: PromptStore) -> None:
        try:
            for i in range(8):
                s.register("busy", f"v{i} {{{{ x }}}}")
                s.promote("busy", "production", 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert [v.version for v in stores[0].versions("busy")] == list(range(1, 49))
        assert stores[1].get("prompts:/busy@production").version == 1
    finally:
        for s in stores:
            s.close()


def test_embedded_state_stays_in_the_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}")
    store = PromptStore.from_settings(settings)
    store.register("hi", "Hi {{ who }}")
    store.close()
    db = tmp_path / "prompts" / "prompts.db"
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert {"herald_prompt_versions", "herald_prompt_aliases"} <= names
    services = Services(settings)
    assert services.prompts is services.prompts  # one store per Herald, opened on first use
    assert services.prompts.get("hi").template == "Hi {{ who }}"
    services.close()
    reopened = open_prompt_store(tmp_path)
    assert reopened.get("prompts:/hi/1").variables == ["who"]
    reopened.close()


def test_a_file_from_before_the_rename_is_adopted(tmp_path: Path) -> None:
    db = tmp_path / "prompts" / "prompts.db"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE prompt_versions (name TEXT NOT NULL, version INTEGER NOT NULL,
          template TEXT NOT NULL, variables TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
          metadata TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL,
          PRIMARY KEY (name, version));
        CREATE TABLE prompt_aliases (name TEXT NOT NULL, alias TEXT NOT NULL,
          version INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (name, alias));
        INSERT INTO prompt_versions VALUES
          ('old', 1, 'Old {{ a }}', '["a"]', 'kept', '{}', '2026-01-01T00:00:00+00:00');
        INSERT INTO prompt_aliases VALUES ('old', 'production', 1, '2026-01-01T00:00:00+00:00');
        """
    )
    conn.close()
    store = open_prompt_store(tmp_path)
    try:
        old = store.get("prompts:/old@production")
        assert (old.version, old.description, old.aliases) == (1, "kept", ["production"])
        assert store.register("old", "New {{ a }}").version == 2
    finally:
        store.close()
    again = open_prompt_store(tmp_path)  # the legacy tables are gone: nothing is copied twice
    assert [v.version for v in again.versions("old")] == [1, 2]
    again.close()
