"""The prompt registry: versioned prompt templates with aliases.

    store = PromptStore.from_settings(settings)  # or PromptStore(path) / PromptStore(db_url)
    v = store.register("support-answer", "Answer {{ question }} politely.", description="…")
    store.promote("support-answer", "production", v.version)
    store.render("prompts:/support-answer@production", {"question": "Where is my order?"})

References: ``prompts:/name/3`` (a version), ``prompts:/name@production`` (an alias),
``prompts:/name`` or ``name`` (the latest version). Templates are Jinja2, rendered in an
immutable sandbox with ``StrictUndefined``; the variables a template uses are found when it is
registered (and must match ``variables`` when those are declared), and a render must supply
exactly those (missing or unknown variables are 400 errors naming them).
Personal data in a template is handled on save by the PII policy ``security.pii.prompts``
(warn — the default —, redact, block or off; :func:`herald.security.pii.screen_prompt`).

Where the state lives: on PostgreSQL in the shared database (tables ``herald_prompt_versions``
and ``herald_prompt_aliases``), so ``herald api``, ``worker`` and ``serve`` on different hosts
see the same prompts; embedded in ``$HERALD_HOME/prompts/prompts.db``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Row,
    Table,
    Text,
    delete,
    func,
    select,
    text,
    update,
)

from herald.errors import HeraldError, NotFound
from herald.security.pii import PIIPolicy, screen_prompt
from herald.store.shared import StateStore

if TYPE_CHECKING:
    from herald.security.templates import TemplateLimits
    from herald.settings import Settings

log = logging.getLogger("herald.prompts")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_URI = re.compile(r"^(?:prompts:/)?(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))?$")
MAX_TEMPLATE_CHARS = 64_000

_NAME_LOCK = 0x48525054  # pg_advisory_xact_lock(key, hashtext(name)) of one prompt's writers

METADATA = MetaData()
VERSIONS = Table(
    "herald_prompt_versions",
    METADATA,
    Column("name", Text, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("template", Text, nullable=False),
    Column("variables", Text, nullable=False),  # JSON list
    Column("description", Text, nullable=False, server_default=""),
    Column("metadata", Text, nullable=False, server_default="{}"),  # JSON object
    Column("created_at", Text, nullable=False),  # ISO 8601, UTC
)
ALIASES = Table(
    "herald_prompt_aliases",
    METADATA,
    Column("name", Text, primary_key=True),
    Column("alias", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", Text, nullable=False),
)


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
    warnings: list[str] = field(default_factory=list)  # of the save (PII); not stored

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
            **({"warnings": self.warnings} if self.warnings else {}),
        }

    def render(self, variables: Mapping[str, Any], *, limits: TemplateLimits | None = None) -> str:
        """The template rendered with exactly its declared variables, in the bounded sandbox
        (``limits`` bound its steps and output; a refusal is a PromptRenderError)."""
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

        from herald.security.templates import render

        try:
            return render(_env(limits), self.template, variables)
        except TemplateError as exc:
            raise PromptRenderError(f"{self.uri}: {type(exc).__name__}: {exc}") from exc


def _env(limits: TemplateLimits | None = None) -> Any:
    """The bounded sandbox (no loader, step and size budgets) prompts render in."""
    from jinja2 import StrictUndefined

    from herald.security.templates import BoundedSandbox

    return BoundedSandbox(limits=limits, undefined=StrictUndefined, autoescape=False)


def template_variables(template: str) -> list[str]:
    """The undeclared variables a Jinja2 template reads, sorted (raises PromptError)."""
    from jinja2 import TemplateSyntaxError, meta, nodes

    try:
        ast = _env().parse(template)
    except TemplateSyntaxError as exc:
        raise PromptError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    loads = ast.find(nodes.Include) or ast.find(nodes.Import) or ast.find(nodes.FromImport)
    if loads is not None or ast.find(nodes.Extends) is not None:
        raise PromptError(
            "templates cannot include, import or extend other templates; inline the text"
        )
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


class PromptStore(StateStore):
    """Versions and aliases of prompt templates (thread- and process-safe).

    ``PromptStore(path)`` keeps them in that SQLite file; ``PromptStore("postgresql://…")`` in
    that database (tables ``herald_prompt_versions`` and ``herald_prompt_aliases``), which is
    where :meth:`from_settings` puts them when Herald runs on PostgreSQL, so every role sees
    the same prompts.
    """

    metadata = METADATA
    sqlite_file = "prompts/prompts.db"
    what = "prompt database"
    # the tables of SQLite files written before they were named herald_* (moved once)
    legacy_tables = {"prompt_versions": VERSIONS, "prompt_aliases": ALIASES}
    # the operator's security.pii (set by from_settings); the default policy without settings
    pii_policy = PIIPolicy()

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        store = super().from_settings(settings)
        store.pii_policy = PIIPolicy.from_settings(settings)
        return store

    @contextmanager
    def _tx(self, name: str | None = None) -> Iterator[Connection]:
        """One write transaction; with ``name``, serialised with other writers of that prompt
        (SQLite takes its write lock at BEGIN; PostgreSQL an advisory lock per name)."""
        with super()._tx() as conn:
            if name is not None and conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k, hashtext(:n))"),
                    {"k": _NAME_LOCK, "n": name},
                )
            yield conn

    # writes -----------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        template: str,
        *,
        variables: list[str] | None = None,
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
        pii: PIIPolicy | None = None,
    ) -> PromptVersion:
        """Store ``template`` as the next version of ``name`` (raises PromptError); personal
        data in it is handled by ``pii`` (default: the bound ``security.pii`` policy)."""
        if not NAME.match(name):
            raise PromptError(f"prompt name {name!r} is invalid (letters, digits, . _ -)")
        if not template.strip():
            raise PromptError("template must not be empty")
        if len(template) > MAX_TEMPLATE_CHARS:
            raise PromptError(f"template is over {MAX_TEMPLATE_CHARS} characters")
        template, warnings = screen_prompt(template, pii or self.pii_policy)
        for w in warnings:
            log.warning("prompt %s: %s", name, w)
        used = template_variables(template)
        if variables is not None:
            declared = sorted(set(variables))
            if declared != used:
                raise PromptError(
                    f"declared variables ({', '.join(declared) or 'none'}) do not match the "
                    f"ones the template uses ({', '.join(used) or 'none'})"
                )
        meta = json.dumps(dict(metadata or {}), default=str)
        v = VERSIONS.c
        with self._tx(name) as db:
            latest = db.execute(
                select(func.coalesce(func.max(v.version), 0)).where(v.name == name)
            ).scalar_one()
            version = int(latest) + 1
            created = _now()
            db.execute(
                VERSIONS.insert().values(
                    name=name,
                    version=version,
                    template=template,
                    variables=json.dumps(used),
                    description=description,
                    metadata=meta,
                    created_at=created,
                )
            )
        return PromptVersion(
            name, version, template, used, description, json.loads(meta), created, [], warnings
        )

    def promote(self, name: str, alias: str, version: int) -> tuple[PromptVersion, int | None]:
        """Point ``alias`` at ``version``; returns the version and the alias's previous one."""
        if not ALIAS.match(alias) or alias == "latest":
            raise PromptError(f"alias {alias!r} is invalid (a letter, then letters, digits, _ -)")
        self.get(f"prompts:/{name}/{version}")
        a = ALIASES.c
        with self._tx(name) as db:
            previous = db.execute(
                select(a.version).where(a.name == name, a.alias == alias)
            ).scalar_one_or_none()
            now = _now()
            if previous is None:
                db.execute(
                    ALIASES.insert().values(name=name, alias=alias, version=version, updated_at=now)
                )
            else:
                db.execute(
                    update(ALIASES)
                    .where(a.name == name, a.alias == alias)
                    .values(version=version, updated_at=now)
                )
        return self.get(f"prompts:/{name}/{version}"), None if previous is None else int(previous)

    def delete_alias(self, name: str, alias: str) -> None:
        a = ALIASES.c
        with self._tx(name) as db:
            cur = db.execute(delete(ALIASES).where(a.name == name, a.alias == alias))
            if cur.rowcount == 0:
                raise PromptNotFound(f"prompt {name!r} has no alias {alias!r}")

    # reads ------------------------------------------------------------------------------------
    @staticmethod
    def _aliases(db: Connection, name: str) -> dict[int, list[str]]:
        a = ALIASES.c
        out: dict[int, list[str]] = {}
        for alias, version in db.execute(
            select(a.alias, a.version).where(a.name == name).order_by(a.alias)
        ):
            out.setdefault(int(version), []).append(alias)
        return out

    @staticmethod
    def _row(row: Row[Any], aliases: dict[int, list[str]]) -> PromptVersion:
        m = row._mapping
        version = int(m["version"])
        return PromptVersion(
            m["name"],
            version,
            m["template"],
            json.loads(m["variables"]),
            m["description"],
            json.loads(m["metadata"]),
            m["created_at"],
            aliases.get(version, []),
        )

    def get(self, ref: str) -> PromptVersion:
        """The version ``ref`` points at (raises PromptNotFound, PromptError)."""
        name, version, alias = parse_ref(ref)
        a, v = ALIASES.c, VERSIONS.c
        with self._read() as db:
            if alias is not None and alias != "latest":
                pointed = db.execute(
                    select(a.version).where(a.name == name, a.alias == alias)
                ).scalar_one_or_none()
                if pointed is None:
                    raise PromptNotFound(f"prompt {name!r} has no alias {alias!r}")
                version = int(pointed)
            query = select(VERSIONS).where(v.name == name)
            if version is not None:
                query = query.where(v.version == version)
            row = db.execute(query.order_by(v.version.desc()).limit(1)).first()
            if row is None:
                what = f"version {version} of prompt {name!r}" if version else f"prompt {name!r}"
                raise PromptNotFound(f"{what} does not exist")
            return self._row(row, self._aliases(db, name))

    def versions(self, name: str) -> list[PromptVersion]:
        v = VERSIONS.c
        with self._read() as db:
            rows = db.execute(select(VERSIONS).where(v.name == name).order_by(v.version)).all()
            if not rows:
                raise PromptNotFound(f"prompt {name!r} does not exist")
            aliases = self._aliases(db, name)
            return [self._row(r, aliases) for r in rows]

    def list(self) -> list[PromptVersion]:
        """The latest version of every prompt."""
        v = VERSIONS.c
        latest = select(v.name, func.max(v.version).label("v")).group_by(v.name).subquery("m")
        query = (
            select(VERSIONS)
            .join(latest, (v.name == latest.c.name) & (v.version == latest.c.v))
            .order_by(v.name)
        )
        with self._read() as db:
            rows = db.execute(query).all()
            return [self._row(r, self._aliases(db, r._mapping["name"])) for r in rows]

    def render(self, ref: str, variables: Mapping[str, Any]) -> str:
        return self.get(ref).render(variables)


def default_path(home: Path | str) -> Path:
    """The SQLite file of an embedded Herald home: ``$HERALD_HOME/prompts/prompts.db``."""
    return PromptStore.default_path(home)


def open_prompt_store(home: Path | str) -> PromptStore:
    """The registry in the SQLite file of a Herald home (:func:`default_path`); a running
    Herald's roles share the store of its services (``Services.prompts``)."""
    return PromptStore(default_path(home))


__all__ = [
    "PromptError",
    "PromptNotFound",
    "PromptRenderError",
    "PromptStore",
    "PromptVersion",
    "default_path",
    "open_prompt_store",
    "parse_ref",
    "template_variables",
]
