"""``format``: JSON / JSON-schema validity and verifiable instruction-following checks.

Checks come from the sample's ``checks`` (merged over the engine's ``options.checks``):

``json: true``           the response is (or contains, in a code fence) one JSON value
``json_schema: {...}``   ... that validates against this JSON Schema
``min_words`` / ``max_words``, ``min_chars`` / ``max_chars``
``keywords: [...]``      every keyword occurs (case-insensitive)
``forbidden: [...]``     no forbidden word occurs
``language: en|fr|de|es``  the dominant language by stop-word counts (a heuristic)
``regex``                the pattern matches; ``starts_with`` / ``ends_with``; ``lowercase``

Metrics: ``instruction_following`` (1 when every check of the item passes — strict),
``check_accuracy`` (share of the item's checks that pass — loose), ``json_valid`` (items with a
JSON check only).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.evaluation.base import Engine, ItemContext
from herald.evaluation.errors import ItemError

STOPWORDS = {
    "en": {"the", "and", "is", "of", "to", "in", "it", "that", "a", "for", "with", "are"},
    "fr": {"le", "la", "les", "et", "est", "de", "des", "un", "une", "pour", "que", "dans"},
    "de": {"der", "die", "das", "und", "ist", "ein", "eine", "nicht", "zu", "mit", "den", "im"},
    "es": {"el", "la", "los", "las", "y", "es", "de", "un", "una", "para", "que", "en"},
}
KNOWN_CHECKS = {
    "json",
    "json_schema",
    "min_words",
    "max_words",
    "min_chars",
    "max_chars",
    "keywords",
    "forbidden",
    "language",
    "regex",
    "starts_with",
    "ends_with",
    "lowercase",
}
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class FormatOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checks: dict[str, Any] = Field(default_factory=dict, description="checks for every item")


def extract_json(text: str) -> Any:
    """The JSON value in ``text`` (whole text, a fenced block, or the outermost {...}/[...])."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    for open_, close in (("{", "}"), ("[", "]")):
        i, j = text.find(open_), text.rfind(close)
        if 0 <= i < j:
            candidates.append(text[i : j + 1])
    for c in candidates:
        try:
            return json.loads(c)
        except (json.JSONDecodeError, ValueError):
            continue
    raise ValueError("no JSON value found in the response")


def detect_language(text: str) -> str | None:
    words = re.findall(r"[^\W\d_]+", text.lower())
    counts = {lang: sum(w in sw for w in words) for lang, sw in STOPWORDS.items()}
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] > 0 else None


def run_checks(text: str, checks: dict[str, Any]) -> dict[str, bool]:
    """Each check's outcome (raises ``ValueError`` for an unknown check or a bad schema)."""
    unknown = set(checks) - KNOWN_CHECKS
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(sorted(unknown))}")
    out: dict[str, bool] = {}
    words = text.split()
    low = text.lower()
    if checks.get("json") or "json_schema" in checks:
        try:
            value = extract_json(text)
            ok = True
        except ValueError:
            value, ok = None, False
        out["json"] = ok
        if "json_schema" in checks:
            import jsonschema  # type: ignore[import-untyped]

            try:
                jsonschema.validate(value, checks["json_schema"])
                out["json_schema"] = ok
            except jsonschema.ValidationError:
                out["json_schema"] = False
            except jsonschema.SchemaError as exc:
                raise ValueError(f"invalid json_schema: {exc.message}") from None
    if "min_words" in checks:
        out["min_words"] = len(words) >= int(checks["min_words"])
    if "max_words" in checks:
        out["max_words"] = len(words) <= int(checks["max_words"])
    if "min_chars" in checks:
        out["min_chars"] = len(text) >= int(checks["min_chars"])
    if "max_chars" in checks:
        out["max_chars"] = len(text) <= int(checks["max_chars"])
    for kw in checks.get("keywords", []):
        out[f"keyword:{kw}"] = str(kw).lower() in low
    for bad in checks.get("forbidden", []):
        out[f"forbidden:{bad}"] = str(bad).lower() not in low
    if "language" in checks:
        out["language"] = detect_language(text) == checks["language"]
    if "regex" in checks:
        out["regex"] = re.search(checks["regex"], text) is not None
    if "starts_with" in checks:
        out["starts_with"] = text.strip().startswith(checks["starts_with"])
    if "ends_with" in checks:
        out["ends_with"] = text.strip().endswith(checks["ends_with"])
    if checks.get("lowercase"):
        out["lowercase"] = text == text.lower()
    return out


class FormatEngine(Engine):
    name = "format"
    known_metrics: ClassVar[tuple[str, ...]] = (
        "instruction_following",
        "check_accuracy",
        "json_valid",
    )
    default_metrics = known_metrics
    options_model = FormatOptions

    async def score(self, item: ItemContext) -> dict[str, float]:
        checks = {**self.options.checks, **(item.sample.checks or {})}
        checks.pop("blocked_terms", None)  # the safety engine's
        if not checks:
            raise ItemError("no format checks for this item (sample.checks or options.checks)")
        try:
            results = run_checks(item.text, checks)
        except ValueError as exc:
            raise ItemError(str(exc)) from None
        out: dict[str, float] = {}
        if "instruction_following" in self.metrics:
            out["instruction_following"] = float(all(results.values()))
        if "check_accuracy" in self.metrics:
            out["check_accuracy"] = sum(results.values()) / len(results)
        if "json_valid" in self.metrics and "json" in results:
            out["json_valid"] = float(results["json"] and results.get("json_schema", True))
        return out
