"""Retrieval-QA chains: history-aware query rewriting, context packing and numbered citations.

The pieces are pure functions of their inputs (no I/O, no model), so they are tested directly;
:mod:`herald.rag.chain_backend` serves them as the OpenAI model ``rag/<collection>@<model>``::

    template = load_template("default")
    query = rewrite_query(messages)                       # last user turn + recent context
    chunks = retrieve(collection, query, k=template.k, mode=template.mode)
    packed = pack(template, messages, chunks, render, budget)   # drops low-ranked passages
    packed.messages, packed.citations                     # → the inner model; → the response

Templates are YAML files (``examples/rag/templates/default.yaml``): system prompt, the format of
one context passage, the citation instructions and retrieval settings. Placeholders are
``{name}`` fields filled by plain substitution (no format-string attribute access, no eval).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from herald.rag.errors import RagError
from herald.rag.retrieval import MODES, RetrievedChunk

TEMPLATE_FIELDS = (
    "name",
    "description",
    "system",
    "passage",
    "user",
    "citation_instructions",
    "no_context",
    "sources_footer",
    "k",
    "mode",
    "reserve_tokens",
)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MARKER = re.compile(r"\[(\d{1,3})\]")
_REFERRING = [
    *("it", "its", "they", "them", "their", "that", "this", "those", "these", "he", "she"),
    *("his", "her", "there", "then", "also", "and", "more"),
]
# case-sensitive (lower or capitalised) so that acronyms such as "IT" do not count
_FOLLOW_UP = re.compile(
    r"\b(" + "|".join(f"[{w[0]}{w[0].upper()}]{w[1:]}" for w in _REFERRING) + r")\b"
)


class ChainError(RagError):
    """A chain cannot be built or run (bad template, nothing fits the context window)."""

    code = "rag_chain_error"


@dataclass(frozen=True)
class ChainTemplate:
    """How a chain prompts the model; see ``examples/rag/templates/default.yaml``."""

    name: str = "default"
    description: str = "Answer from the numbered passages and cite them as [n]."
    system: str = (
        "You are a helpful assistant that answers questions about the documents of the "
        "collection {collection}. Answer only from the numbered context passages. "
        "{citation_instructions}"
    )
    passage: str = "[{index}] {title}\n{text}"
    user: str = "Context passages:\n\n{context}\n\nQuestion: {question}"
    citation_instructions: str = (
        "After each statement, cite the passage it comes from with its number in square "
        "brackets, like [1] or [2]. If the passages do not contain the answer, say that you "
        "do not know."
    )
    no_context: str = "(no passages found)"
    sources_footer: bool = True
    k: int = 5
    mode: Literal["dense", "keyword", "hybrid"] = "hybrid"
    reserve_tokens: int = 256  # room kept for the answer when the request sets no max_tokens

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "template") -> ChainTemplate:
        """Validate a parsed YAML mapping (unknown keys and bad values are errors)."""
        if not isinstance(data, Mapping):
            raise ChainError(f"{origin}: a chain template must be a YAML mapping")
        unknown = sorted(set(data) - set(TEMPLATE_FIELDS))
        if unknown:
            raise ChainError(
                f"{origin}: unknown template field(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(TEMPLATE_FIELDS)}"
            )
        kw: dict[str, Any] = {}
        for key, value in data.items():
            default = getattr(cls, key)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ChainError(f"{origin}: {key} must be true or false")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ChainError(f"{origin}: {key} must be an integer")
            elif not isinstance(value, str):
                raise ChainError(f"{origin}: {key} must be a string")
            kw[key] = value
        t = cls(**kw)
        if t.mode not in MODES:
            raise ChainError(f"{origin}: mode must be one of {', '.join(MODES)}")
        if not 1 <= t.k <= 50:
            raise ChainError(f"{origin}: k must be within 1..50")
        if not 0 <= t.reserve_tokens <= 32768:
            raise ChainError(f"{origin}: reserve_tokens must be within 0..32768")
        if "{context}" not in t.user and "{context}" not in t.system:
            raise ChainError(f"{origin}: the system or user text must contain {{context}}")
        if "{question}" not in t.user:
            raise ChainError(f"{origin}: the user text must contain {{question}}")
        if "{text}" not in t.passage:
            raise ChainError(f"{origin}: passage must contain {{text}}")
        return t

    def with_overrides(self, **kw: Any) -> ChainTemplate:
        """A copy with request-level overrides (validated like the file)."""
        data = {f: getattr(self, f) for f in TEMPLATE_FIELDS}
        data.update({k: v for k, v in kw.items() if v is not None})
        return ChainTemplate.from_mapping(data, f"template {self.name!r} with request options")


def fill(text: str, values: Mapping[str, Any]) -> str:
    """Replace ``{name}`` placeholders known in ``values``; others stay as written."""
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


def load_template(name: str, folders: Sequence[Path] = ()) -> ChainTemplate:
    """The template ``name`` from the first of ``folders`` holding ``<name>.yaml``; the built-in
    ``default`` when no file is found for it. Raises ChainError for an unknown name."""
    if not _NAME.match(name):
        raise ChainError(f"template name {name!r} is invalid (letters, digits, _ . -)")
    for folder in folders:
        path = Path(folder) / f"{name}.yaml"
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise ChainError(f"{path}: invalid YAML: {exc}") from exc
            return ChainTemplate.from_mapping(data or {}, str(path))
    if name == "default":
        return ChainTemplate()
    where = ", ".join(str(f) for f in folders) or "no template folders"
    raise ChainError(f"chain template {name!r} not found (looked in {where})")


# query rewriting ------------------------------------------------------------------------------
def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def rewrite_query(messages: Sequence[Mapping[str, Any]], *, history: int = 2) -> str:
    """The retrieval query for a conversation: the last user message, preceded by up to
    ``history`` earlier user messages when it looks like a follow-up (short, or refers back
    with a pronoun), so "and for part-time staff?" retrieves what the conversation is about."""
    users = [_text(m).strip() for m in messages if m.get("role") == "user" and _text(m).strip()]
    if not users:
        raise ChainError("a RAG chat needs at least one user message with text")
    last = users[-1]
    follow_up = len(last.split()) < 6 or bool(_FOLLOW_UP.search(last))
    if not follow_up or len(users) == 1:
        return last
    return " ".join([*users[-1 - history : -1], last])


# packing ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Citation:
    """One numbered passage given to the model."""

    index: int
    source: str
    title: str
    page: int | None
    ref_doc_id: str
    score: float
    section: str | None = None
    cited: bool = False  # whether the answer contains its [index] marker

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "source": self.source,
            "title": self.title,
            "page": self.page,
            "section": self.section,
            "ref_doc_id": self.ref_doc_id,
            "score": self.score,
            "cited": self.cited,
        }


@dataclass
class Packed:
    """The messages for the inner model and the passages they number."""

    messages: list[dict[str, Any]]
    citations: list[Citation]
    prompt_tokens: int
    dropped: int = 0  # retrieved passages left out to fit the context window
    extra: dict[str, Any] = field(default_factory=dict)


def _citation(i: int, c: RetrievedChunk) -> Citation:
    section = c.metadata.get("section")
    return Citation(
        index=i,
        source=c.source,
        title=c.title,
        page=c.page,
        ref_doc_id=c.ref_doc_id,
        score=float(c.score),
        section=section if isinstance(section, str) and section else None,
    )


def build_messages(
    template: ChainTemplate,
    messages: Sequence[Mapping[str, Any]],
    chunks: Sequence[RetrievedChunk],
    *,
    collection: str,
) -> list[dict[str, Any]]:
    """The chat for the inner model: the template's system prompt (plus the client's system
    messages), the earlier turns, and the last user turn wrapped with the numbered passages."""
    passages = [
        fill(
            template.passage,
            {
                "index": i,
                "title": c.title or Path(c.source).name,
                "source": c.source,
                "page": "" if c.page is None else c.page,
                "section": c.metadata.get("section") or "",
                "text": c.text.strip(),
            },
        )
        for i, c in enumerate(chunks, 1)
    ]
    context = "\n\n".join(passages) or template.no_context
    last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
    values = {
        "collection": collection,
        "citation_instructions": template.citation_instructions,
        "context": context,
        "question": _text(messages[last_user]).strip(),
    }
    system = fill(template.system, values)
    client_system = [_text(m) for m in messages if m.get("role") == "system" and _text(m)]
    if client_system:
        system += "\n\n" + "\n\n".join(client_system)
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for i, m in enumerate(messages):
        if m.get("role") == "system":
            continue
        if i == last_user:
            out.append({"role": "user", "content": fill(template.user, values)})
        else:
            out.append({"role": str(m.get("role")), "content": _text(m)})
    return out


def pack(
    template: ChainTemplate,
    messages: Sequence[Mapping[str, Any]],
    chunks: Sequence[RetrievedChunk],
    count_tokens: Callable[[list[dict[str, Any]]], int],
    budget: int,
    *,
    collection: str,
) -> Packed:
    """Number as many of ``chunks`` (best first) as fit in ``budget`` prompt tokens, counted by
    ``count_tokens`` on the rendered chat; passages that do not fit are dropped, lowest-ranked
    first. Raises ChainError when even the prompt without passages does not fit."""
    kept = list(chunks)
    while True:
        msgs = build_messages(template, messages, kept, collection=collection)
        tokens = count_tokens(msgs)
        if tokens <= budget:
            return Packed(
                msgs,
                [_citation(i, c) for i, c in enumerate(kept, 1)],
                tokens,
                dropped=len(chunks) - len(kept),
            )
        if not kept:
            raise ChainError(
                f"the conversation alone takes {tokens} tokens, more than the {budget} the "
                "model's context window leaves for the prompt; shorten the conversation or "
                "lower max_tokens"
            )
        kept.pop()  # the lowest-ranked passage


def mark_cited(citations: Sequence[Citation], answer: str) -> list[Citation]:
    """The citations with ``cited`` set where the answer contains their ``[n]`` marker."""
    used = {int(m) for m in _MARKER.findall(answer)}
    return [Citation(**{**c.to_dict(), "cited": c.index in used}) for c in citations]


def sources_footer(citations: Sequence[Citation]) -> str:
    """A plain-text list of the numbered sources, appended to the answer."""
    if not citations:
        return ""
    lines = []
    for c in citations:
        where = c.source + (f", page {c.page}" if c.page is not None else "")
        lines.append(f"[{c.index}] {c.title or Path(c.source).name} ({where})")
    return "\n\nSources:\n" + "\n".join(lines)
