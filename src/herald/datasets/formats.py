"""Data set formats: detect one from the columns, validate rows, normalise them.

Three formats, named as in the fine-tuning tools people know:

* ``chat`` — column ``messages``: a list of OpenAI chat messages ``{"role", "content"}`` with
  roles ``system``, ``user``, ``assistant``, ``tool``; at least one ``assistant`` message.
* ``instruction`` — columns ``instruction`` and ``output``, optional ``input`` (Alpaca).
* ``text`` — column ``text`` (plain language-model text).

Normalised rows hold exactly the format's fields (other columns are dropped and reported), with
text in Unicode NFC and line endings as ``\\n``. Pure functions: no I/O.
"""

from __future__ import annotations

import difflib
import json
import math
import unicodedata
from typing import Any, Literal

from herald.datasets.errors import DatasetError, RowError

Format = Literal["chat", "instruction", "text"]
FORMATS: dict[str, tuple[str, ...]] = {
    "chat": ("messages",),
    "instruction": ("instruction", "output"),
    "text": ("text",),
}
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"chat": (), "instruction": ("input",), "text": ()}
ROLES = ("system", "user", "assistant", "tool")
# Roles of other conventions (ShareGPT, Gemini) and the OpenAI role they mean: used for hints.
ROLE_HINTS = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant",
              "ai": "assistant", "function": "tool", "developer": "system"}  # fmt: skip
MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"})


def nearest(name: str, candidates: list[str]) -> str | None:
    """The candidate closest to ``name`` (difflib), or None when nothing is close."""
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[match[0]] if match else None


def detect_format(columns: list[str], requested: str = "auto") -> Format:
    """The format of a table with ``columns``; raise :class:`DatasetError` naming what is missing."""
    present = list(columns)
    if requested != "auto":
        if requested not in FORMATS:
            raise DatasetError(
                f"unknown data set format {requested!r}: use one of auto, {', '.join(FORMATS)}"
            )
        missing = [c for c in FORMATS[requested] if c not in present]
        if missing:
            raise DatasetError(_missing_message(requested, missing, present))
        return requested  # type: ignore[return-value]
    for fmt, required in FORMATS.items():
        if all(c in present for c in required):
            return fmt  # type: ignore[return-value]
    hints = []
    for fmt, required in FORMATS.items():
        for col in required:
            near = nearest(col, present)
            if near is not None and near != col:
                hints.append(f"{col!r} ({fmt}) looks like {near!r}")
    expected = "'messages' (chat), 'instruction' + 'output' (instruction) or 'text' (text)"
    msg = (
        f"cannot tell the data set format: expected column {expected}; "
        f"columns present: {', '.join(map(repr, present)) or 'none'}"
    )
    if hints:
        msg += f"; nearest: {'; '.join(hints)} — rename the column or pass --format"
    raise DatasetError(msg, details={"columns": present})


def _missing_message(fmt: str, missing: list[str], present: list[str]) -> str:
    parts = []
    for col in missing:
        near = nearest(col, [c for c in present if c not in FORMATS[fmt]])
        parts.append(f"{col!r}" + (f" (nearest column present: {near!r})" if near else ""))
    return (
        f"{fmt} data sets need column(s) {', '.join(map(repr, FORMATS[fmt]))}; missing "
        f"{', '.join(parts)}; columns present: {', '.join(map(repr, present)) or 'none'}"
    )


def _text(value: str) -> str:
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _required_str(
    row: dict[str, Any], key: str, n: int, errors: list[RowError], field: str | None = None
) -> str | None:
    value = row.get(key)
    where = field or key
    if _is_missing(value):
        errors.append(RowError(n, where, "missing value"))
        return None
    if not isinstance(value, str):
        errors.append(RowError(n, where, f"expected a string, got {type(value).__name__}"))
        return None
    if not value.strip():
        errors.append(RowError(n, where, "empty string"))
        return None
    return _text(value)


def _content(value: Any, n: int, field: str, errors: list[RowError]) -> str | None:
    """A message's content: a string or a list of text parts (OpenAI content parts)."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        texts = []
        for j, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text":
                errors.append(
                    RowError(
                        n, f"{field}[{j}]", "only text content parts {type: text} are supported"
                    )
                )
                return None
            if not isinstance(part.get("text"), str):
                errors.append(RowError(n, f"{field}[{j}].text", "expected a string"))
                return None
            texts.append(part["text"])
        return _text("".join(texts))
    errors.append(
        RowError(n, field, f"expected a string or a list of text parts, got {type(value).__name__}")
    )
    return None


def _message(m: Any, n: int, i: int, errors: list[RowError]) -> dict[str, Any] | None:
    field = f"messages[{i}]"
    if not isinstance(m, dict):
        errors.append(
            RowError(n, field, f"expected an object {{role, content}}, got {type(m).__name__}")
        )
        return None
    unknown = sorted(set(m) - MESSAGE_KEYS)
    if unknown:
        errors.append(
            RowError(
                n,
                field,
                f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(MESSAGE_KEYS))}",
            )
        )
        return None
    role = m.get("role")
    if role not in ROLES:
        near = (
            ROLE_HINTS.get(role.lower()) or nearest(role, list(ROLES))
            if isinstance(role, str)
            else None
        )
        hint = f" (did you mean {near!r}?)" if near and near != role else ""
        errors.append(
            RowError(n, f"{field}.role", f"role {role!r} is not one of {', '.join(ROLES)}{hint}")
        )
        return None
    out: dict[str, Any] = {"role": role}
    content = m.get("content")
    if content is None:
        if role == "assistant" and m.get("tool_calls"):
            out["content"] = None
        else:
            errors.append(RowError(n, f"{field}.content", "missing content"))
            return None
    else:
        text = _content(content, n, f"{field}.content", errors)
        if text is None:
            return None
        out["content"] = text
    for key in ("name", "tool_call_id"):
        if key in m and m[key] is not None:
            if not isinstance(m[key], str):
                errors.append(RowError(n, f"{field}.{key}", "expected a string"))
                return None
            out[key] = m[key]
    if m.get("tool_calls") is not None:
        if role != "assistant" or not isinstance(m["tool_calls"], list):
            errors.append(
                RowError(
                    n, f"{field}.tool_calls", "only assistant messages carry a tool_calls list"
                )
            )
            return None
        out["tool_calls"] = m["tool_calls"]
    return out


def _messages(value: Any, n: int, errors: list[RowError]) -> list[dict[str, Any]] | None:
    if isinstance(value, str):  # CSV cells hold JSON text
        try:
            value = json.loads(value)
        except ValueError as exc:
            errors.append(RowError(n, "messages", f"not valid JSON: {exc}"))
            return None
    if _is_missing(value):
        errors.append(RowError(n, "messages", "missing value"))
        return None
    if not isinstance(value, list):
        errors.append(
            RowError(n, "messages", f"expected a list of messages, got {type(value).__name__}")
        )
        return None
    if not value:
        errors.append(RowError(n, "messages", "empty conversation"))
        return None
    before = len(errors)
    out = [_message(m, n, i, errors) for i, m in enumerate(value)]
    if len(errors) > before:
        return None
    msgs = [m for m in out if m is not None]
    if not any(m["role"] == "assistant" for m in msgs):
        errors.append(RowError(n, "messages", "no assistant message: nothing to learn from"))
        return None
    return msgs


def normalise_row(
    row: dict[str, Any], fmt: Format, n: int, errors: list[RowError]
) -> dict[str, Any] | None:
    """The normalised row, or None after appending the row's problems to ``errors``."""
    if fmt == "chat":
        msgs = _messages(row.get("messages"), n, errors)
        return None if msgs is None else {"messages": msgs}
    if fmt == "instruction":
        before = len(errors)
        instruction = _required_str(row, "instruction", n, errors)
        output = _required_str(row, "output", n, errors)
        extra = row.get("input")
        if _is_missing(extra):
            extra = ""
        elif not isinstance(extra, str):
            errors.append(RowError(n, "input", f"expected a string, got {type(extra).__name__}"))
        if len(errors) > before or instruction is None or output is None:
            return None
        return {"instruction": instruction, "input": _text(str(extra)), "output": output}
    text = _required_str(row, "text", n, errors)
    return None if text is None else {"text": text}


def row_text(row: dict[str, Any]) -> str:
    """All text of a normalised row, for statistics and PII scans."""
    if "messages" in row:
        return "\n".join(m["content"] or "" for m in row["messages"])
    if "instruction" in row:
        return "\n".join(x for x in (row["instruction"], row["input"], row["output"]) if x)
    return str(row["text"])
