"""Guardrail rules: what to look for (PII, blocked terms, regexes, size and token limits) and
what to do (redact, block, flag), compiled once per configuration."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from herald.errors import ConfigurationError
from herald.security.pii import PLACEHOLDERS, detector, normalize_kinds
from herald.serving.errors import ServingError

Action = Literal["redact", "block", "flag"]
Direction = Literal["input", "output", "both"]
RuleType = Literal["pii", "terms", "regex", "max_input_chars", "max_tokens"]


class GuardrailViolation(ServingError):
    """A request or response was blocked by a guardrail (HTTP 400)."""

    code = "content_policy_violation"
    status = 400
    type = "invalid_request_error"


class Rule(BaseModel):
    """One guardrail rule (``serving.guardrails`` or a deployment's ``guardrails``)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    type: RuleType
    action: Action = "block"
    direction: Direction = "both"
    kinds: list[str] | None = Field(
        None, description="pii kinds (default: security.pii.kinds, else every kind)"
    )
    terms: list[str] = Field(default_factory=list, description="blocked terms (whole words)")
    pattern: str | None = Field(None, max_length=1000, description="regex (Python syntax)")
    limit: int | None = Field(None, ge=1, description="max_input_chars / max_tokens limit")
    replacement: str = Field("[REDACTED]", max_length=64)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if self.kinds is not None:
            self.kinds = list(normalize_kinds(self.kinds))  # ValueError names unknown kinds
        if self.type == "terms" and not [t for t in self.terms if t.strip()]:
            raise ValueError("a 'terms' rule needs a non-empty terms list")
        if self.type == "regex":
            if not self.pattern:
                raise ValueError("a 'regex' rule needs a pattern")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.pattern!r}: {exc}") from None
        if self.type in ("max_input_chars", "max_tokens"):
            if self.limit is None:
                raise ValueError(f"a {self.type!r} rule needs a limit")
            if self.type == "max_input_chars" and self.action == "redact":
                raise ValueError("max_input_chars supports block or flag")
        return self

    @property
    def on_input(self) -> bool:
        return self.direction in ("input", "both")

    @property
    def on_output(self) -> bool:
        return self.direction in ("output", "both") and self.type in ("pii", "terms", "regex")


def parse_rules(items: list[dict[str, Any]] | None) -> list[Rule]:
    """Validate rule dicts; errors name the rule and field."""
    rules: list[Rule] = []
    for i, item in enumerate(items or []):
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            name = item.get("name", i) if isinstance(item, dict) else i
            raise ConfigurationError(f"invalid guardrail rule {name!r}: {problems}") from None
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigurationError("guardrail rule names must be unique")
    return rules


_NONE: Counter[str] = Counter()  # shared "no match" result (never mutated)
Finder = Callable[[str], list[tuple[int, int, str]]]


class CompiledRule:
    """A text rule with its matcher: spans of (start, end, kind)."""

    def __init__(self, rule: Rule, default_kinds: tuple[str, ...] | None = None) -> None:
        """``default_kinds``: the PII kinds of a ``pii`` rule that names none (None: all)."""
        self.rule = rule
        self.find: Finder
        if rule.type == "pii":
            pii = detector(rule.kinds if rule.kinds is not None else default_kinds)

            def find_pii(text: str) -> list[tuple[int, int, str]]:
                return [(m.start, m.end, m.kind) for m in pii.find(text)]

            self.find = find_pii
        else:
            if rule.type == "terms":
                alts = "|".join(re.escape(t.strip()) for t in rule.terms if t.strip())
                regex = re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE)
            else:
                assert rule.pattern is not None
                regex = re.compile(rule.pattern)
            kind = rule.type

            def find_re(text: str) -> list[tuple[int, int, str]]:
                return [
                    (m.start(), m.end(), kind) for m in regex.finditer(text) if m.end() > m.start()
                ]

            self.find = find_re

    def placeholder(self, kind: str) -> str:
        return (
            PLACEHOLDERS.get(kind, self.rule.replacement)
            if self.rule.type == "pii"
            else (self.rule.replacement)
        )

    def apply(self, text: str, context: str = "") -> tuple[str, Counter[str]]:
        """(text with matches replaced when the action is redact, counts per kind).

        ``context``: text just before ``text`` (already released by a stream) that keyword
        rules may read ("SSN: …"); it is not returned, and a match that began in it is redacted
        from where ``text`` starts."""
        if not text:
            return text, _NONE
        n = len(context)
        spans = [(max(s, n) - n, e - n, k) for s, e, k in self.find(context + text) if e > n]
        if not spans:
            return text, _NONE
        counts: Counter[str] = Counter(kind for _, _, kind in spans)
        if self.rule.action != "redact":
            return text, counts
        out: list[str] = []
        pos = 0
        for s, e, kind in spans:
            out.append(text[pos:s])
            out.append(self.placeholder(kind))
            pos = e
        out.append(text[pos:])
        return "".join(out), counts
