"""The prompt registry: versioned prompt templates with aliases, in one SQLite file.

    store = PromptStore(home / "prompts" / "prompts.db")
    v = store.register("support-answer", "Answer {{ question }} politely.", description="…")
    store.promote("support-answer", "production", v.version)
    store.render("prompts:/support-answer@production", {"question": "Where is my order?"})

References: ``prompts:/name/3`` (a version), ``prompts:/name@production`` (an alias),
``prompts:/name`` or ``name`` (the latest version). Templates are Jinja2, rendered in an
immutable sandbox with ``StrictUndefined``; the variables a template uses are found when it is
registered (and must match ``variables`` when those are declared), and a render must supply
exactly those (missing or unknown variables are 400 errors naming them).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald.errors import HeraldError, NotFound

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_URI = re.compile(r"^(?:prompts:/)?(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))?$")
MAX_TEMPLATE_CHARS = 64_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS prompt_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    template TEXT NOT NULL,
    variables TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS prompt_aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (name, alias)
);
"""


class PromptError(HeraldError):
    """A prompt template or reference is invalid (400)."""

    code = "invalid_prompt"
    status = 400


class PromptRenderError(PromptError):
    """Rendering failed: missing or unknown variables, or a template error (400)."""

    code = "prompt_render_error"


class PromptNotFound(NotFound):
    code = "prompt_not_found"


@dataclass(frozen=True)
class PromptVersion:
    name: str
    version: int
    template: str
    variables: list[str]
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    aliases: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"prompts:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "prompt.version",
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "template": self.template,
            "variables": self.variables,
            "description": self.description,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "aliases": self.aliases,
        }

    def render(self, variables: Mapping[str, Any]) -> str:
        """The template rendered with exactly its declared variables."""
        missing = [v for v in self.variables if v not in variables]
        unknown = sorted(set(variables) - set(self.variables))
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing variable(s) {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown variable(s) {', '.join(unknown)}")
            raise PromptRenderError(
                f"{self.uri}: {'; '.join(parts)}; it declares: "
                f"{', '.join(self.variables) or 'no variables'}"
            )
        from jinja2 import TemplateError

        try:
            return str(_env().from_string(self.template).render(**dict(variables)))
        except TemplateError as exc:
            raise PromptRenderError(f"{self.uri}: {type(exc).__name__}: {exc}") from exc


def _env() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def template_variables(template: str) -> list[str]:
    """The undeclared variables a Jinja2 template reads, sorted (raises PromptError)."""
    from jinja2 import TemplateSyntaxError, meta

    try:
        ast = _env().parse(template)
    except TemplateSyntaxError as exc:
        raise PromptError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    return sorted(meta.find_undeclared_variables(ast))


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``prompts:/name/3`` → (name, 3, None); ``prompts:/name@prod`` → (name, None, "prod")."""
    m = _URI.match(ref.strip())
    if m is None or not NAME.match(m.group("name")):
        raise PromptError(
            f"invalid prompt reference {ref!r}; use prompts:/name/3, prompts:/name@alias or name"
        )
    version = m.group("version")
    return m.group("name"), int(version) if version else None, m.group("alias")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class PromptStore:
    """Versions and aliases of prompt templates in one SQLite file (thread-safe)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # writes -----------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        template: str,
        *,
        variables: list[str] | None = None,
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> PromptVersion:
        """Store ``template`` as the next version of ``name`` (raises PromptError)."""
        if not NAME.match(name):
            raise PromptError(f"prompt name {name!r} is invalid (letters, digits, . _ -)")
        if not template.strip():
            raise PromptError("template must not be empty")
        if len(template) > MAX_TEMPLATE_CHARS:
            raise PromptError(f"template is over {MAX_TEMPLATE_CHARS} characters")
        used = template_variables(template)
        if variables is not None:
            declared = sorted(set(variables))
            if declared != used:
                raise PromptError(
                    f"declared variables ({', '.join(declared) or 'none'}) do not match the "
                    f"ones the template uses ({', '.join(used) or 'none'})"
                )
        meta = json.dumps(dict(metadata or {}), default=str)
        with self._tx() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM prompt_versions WHERE name = ?", (name,)
            ).fetchone()
            version = int(row[0]) + 1
            created = _now()
            db.execute(
                "INSERT INTO prompt_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, version, template, json.dumps(used), description, meta, created),
            )
        return PromptVersion(name, version, template, used, description, json.loads(meta), created)

    def promote(self, name: str, alias: str, version: int) -> tuple[PromptVersion, int | None]:
        """Point ``alias`` at ``version``; returns the version and the alias's previous one."""
        if not ALIAS.match(alias) or alias == "latest":
            raise PromptError(f"alias {alias!r} is invalid (a letter, then letters, digits, _ -)")
        self.get(f"prompts:/{name}/{version}")
        with self._tx() as db:
            row = db.execute(
                "SELECT version FROM prompt_aliases WHERE name = ? AND alias = ?", (name, alias)
            ).fetchone()
            db.execute(
                "INSERT INTO prompt_aliases VALUES (?, ?, ?, ?) ON CONFLICT (name, alias) "
                "DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
                (name, alias, version, _now()),
            )
        return self.get(f"prompts:/{name}/{version}"), None if row is None else int(row[0])

    def delete_alias(self, name: str, alias: str) -> None:
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM prompt_aliases WHERE name = ? AND alias = ?", (name, alias)
            )
            if cur.rowcount == 0:
                raise PromptNotFound(f"prompt {name!r} has no alias {alias!r}")

    # reads ------------------------------------------------------------------------------------
    def _aliases(self, name: str) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for alias, version in self._db.execute(
            "SELECT alias, version FROM prompt_aliases WHERE name = ? ORDER BY alias", (name,)
        ):
            out.setdefault(int(version), []).append(alias)
        return out

    def _row(self, row: tuple[Any, ...], aliases: dict[int, list[str]]) -> PromptVersion:
        name, version, template, variables, description, metadata, created = row
        return PromptVersion(
            name,
            int(version),
            template,
            json.loads(variables),
            description,
            json.loads(metadata),
            created,
            aliases.get(int(version), []),
        )

    def get(self, ref: str) -> PromptVersion:
        """The version ``ref`` points at (raises PromptNotFound, PromptError)."""
        name, version, alias = parse_ref(ref)
        with self._lock:
            if alias is not None and alias != "latest":
                row = self._db.execute(
                    "SELECT version FROM prompt_aliases WHERE name = ? AND alias = ?",
                    (name, alias),
                ).fetchone()
                if row is None:
                    raise PromptNotFound(f"prompt {name!r} has no alias {alias!r}")
                version = int(row[0])
            sql = "SELECT * FROM prompt_versions WHERE name = ?"
            args: tuple[Any, ...] = (name,)
            if version is not None:
                sql += " AND version = ?"
                args = (name, version)
            row = self._db.execute(sql + " ORDER BY version DESC LIMIT 1", args).fetchone()
            if row is None:
                what = f"version {version} of prompt {name!r}" if version else f"prompt {name!r}"
                raise PromptNotFound(f"{what} does not exist")
            return self._row(row, self._aliases(name))

    def versions(self, name: str) -> list[PromptVersion]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM prompt_versions WHERE name = ? ORDER BY version", (name,)
            ).fetchall()
            if not rows:
                raise PromptNotFound(f"prompt {name!r} does not exist")
            aliases = self._aliases(name)
            return [self._row(r, aliases) for r in rows]

    def list(self) -> list[PromptVersion]:
        """The latest version of every prompt."""
        with self._lock:
            rows = self._db.execute(
                "SELECT p.* FROM prompt_versions p JOIN (SELECT name, MAX(version) v FROM "
                "prompt_versions GROUP BY name) m ON p.name = m.name AND p.version = m.v "
                "ORDER BY p.name"
            ).fetchall()
            return [self._row(r, self._aliases(r[0])) for r in rows]

    def render(self, ref: str, variables: Mapping[str, Any]) -> str:
        return self.get(ref).render(variables)


def open_prompt_store(home: Path | str) -> PromptStore:
    """The registry of a Herald home: ``$HERALD_HOME/prompts/prompts.db``."""
    return PromptStore(Path(home) / "prompts" / "prompts.db")


__all__ = [
    "PromptError",
    "PromptNotFound",
    "PromptRenderError",
    "PromptStore",
    "PromptVersion",
    "open_prompt_store",
    "parse_ref",
    "template_variables",
]
