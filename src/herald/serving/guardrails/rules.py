"""Guardrail rules: what to look for (PII, blocked terms, regexes, size and token limits) and
what to do (redact, block, flag), compiled once per configuration."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from herald.datasets.pii import _RULES as PII_RULES
from herald.datasets.pii import PII_KINDS, PLACEHOLDERS
from herald.errors import ConfigurationError
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
    kinds: list[str] = Field(default_factory=lambda: list(PII_KINDS), description="pii kinds")
    terms: list[str] = Field(default_factory=list, description="blocked terms (whole words)")
    pattern: str | None = Field(None, max_length=1000, description="regex (Python syntax)")
    limit: int | None = Field(None, ge=1, description="max_input_chars / max_tokens limit")
    replacement: str = Field("[REDACTED]", max_length=64)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        unknown = [k for k in self.kinds if k not in PII_KINDS]
        if unknown:
            raise ValueError(f"unknown PII kind(s) {unknown}; known: {', '.join(PII_KINDS)}")
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
_DIGIT = re.compile(r"\d")
# the character a PII kind cannot match without (None: a digit); see herald.datasets.pii
_TRIGGERS: dict[str, str | None] = {
    "email": "@",
    "ipv6": ":",
    "iban": None,
    "credit_card": None,
    "ipv4": None,
    "phone": None,
}


class CompiledRule:
    """A text rule with its matcher: spans of (start, end, kind)."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.find: Finder
        if rule.type == "pii":
            kinds = set(rule.kinds)
            detectors = [d for d in PII_RULES if d[0] in kinds]

            def find_pii(text: str) -> list[tuple[int, int, str]]:
                # every detector needs a trigger character: skip those that cannot match
                # (most streamed pieces have no digit, '@' or ':'; this keeps them cheap)
                digit = _DIGIT.search(text) is not None
                if not digit and "@" not in text and ":" not in text:
                    return []
                spans: list[tuple[int, int, str]] = []
                for kind, pattern, check in detectors:
                    trigger = _TRIGGERS.get(kind)
                    if trigger is not None and trigger not in text:
                        continue
                    if trigger is None and not digit:
                        continue
                    for m in pattern.finditer(text):
                        if check is not None and not check(m.group(0)):
                            continue
                        if any(s < m.end() and m.start() < e for s, e, _ in spans):
                            continue  # an earlier kind already claimed this text
                        spans.append((m.start(), m.end(), kind))
                return sorted(spans)

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

    def apply(self, text: str) -> tuple[str, Counter[str]]:
        """(text with matches replaced when the action is redact, counts per kind)."""
        spans = self.find(text) if text else []
        if not spans:
            return text, _NONE
        counts: Counter[str] = Counter(kind for _, _, kind in spans)
        if not spans or self.rule.action != "redact":
            return text, counts
        out: list[str] = []
        pos = 0
        for s, e, kind in spans:
            out.append(text[pos:s])
            out.append(self.placeholder(kind))
            pos = e
        out.append(text[pos:])
        return "".join(out), counts
