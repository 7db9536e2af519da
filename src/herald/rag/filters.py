"""Metadata filters: one small language shared by every vector store.

A filter is a JSON object; top-level keys are ANDed::

    {"source": "pto.md"}                          equality
    {"dept": {"$in": ["hr", "it"]}}               membership
    {"page": {"$gte": 2, "$lt": 5}}               numeric range ($gt, $gte, $lt, $lte)
    {"lang": {"$ne": "de"}}                       inequality

:func:`parse_filters` validates a filter against the fields a collection knows and returns
:class:`Condition` objects; each store translates them (SQL, JSONB, Python). A field the
collection has never seen, an unknown operator or a non-numeric range bound raise
:class:`InvalidFilter` (HTTP 400) before any store is touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from herald.rag.errors import InvalidFilter

Op = Literal["eq", "ne", "in", "gt", "gte", "lt", "lte"]
Scalar = str | int | float | bool
OPS: dict[str, Op] = {
    "$eq": "eq",
    "$ne": "ne",
    "$in": "in",
    "$gt": "gt",
    "$gte": "gte",
    "$lt": "lt",
    "$lte": "lte",
}
RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})
# Fields every chunk has, whatever its documents carried.
BUILTIN_FIELDS = frozenset({"ref_doc_id", "source", "filename", "title", "page", "chunk_index"})


@dataclass(frozen=True)
class Condition:
    """``field <op> value`` (``value`` is a tuple for ``in``)."""

    field: str
    op: Op
    value: Any

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        """Evaluate against one chunk's metadata (the memory store and tests use this)."""
        if self.field not in metadata:
            return self.op == "ne"
        v = metadata[self.field]
        if self.op == "eq":
            return _same(v, self.value)
        if self.op == "ne":
            return not _same(v, self.value)
        if self.op == "in":
            return any(_same(v, x) for x in self.value)
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        if self.op == "gt":
            return bool(v > self.value)
        if self.op == "gte":
            return bool(v >= self.value)
        if self.op == "lt":
            return bool(v < self.value)
        return bool(v <= self.value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    return bool(a == b)


def _scalar(field: str, value: Any) -> Scalar:
    if isinstance(value, str | int | float | bool):
        return value
    raise InvalidFilter(
        f"filter on {field!r}: values must be strings, numbers or booleans, "
        f"got {type(value).__name__}"
    )


def parse_filters(filters: Mapping[str, Any] | None, known: Iterable[str]) -> list[Condition]:
    """Validate ``filters`` against the collection's ``known`` fields."""
    if not filters:
        return []
    if not isinstance(filters, Mapping):
        raise InvalidFilter("filters must be a JSON object of field → value or {operator: value}")
    fields = set(known) | BUILTIN_FIELDS
    out: list[Condition] = []
    for field, spec in filters.items():
        if field not in fields:
            raise InvalidFilter(
                f"unknown filter field {field!r}; this collection's fields are: "
                + ", ".join(sorted(fields)),
                details={"field": field, "known": sorted(fields)},
            )
        if not isinstance(spec, Mapping):
            out.append(Condition(field, "eq", _scalar(field, spec)))
            continue
        if not spec:
            raise InvalidFilter(f"filter on {field!r} is an empty object; use {{'$eq': value}}")
        for key, value in spec.items():
            op = OPS.get(key)
            if op is None:
                raise InvalidFilter(
                    f"unknown filter operator {key!r} on {field!r}; use one of {', '.join(OPS)}"
                )
            if op == "in":
                if not isinstance(value, list | tuple) or not value:
                    raise InvalidFilter(f"'$in' on {field!r} needs a non-empty list")
                out.append(Condition(field, op, tuple(_scalar(field, x) for x in value)))
            elif op in RANGE_OPS:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InvalidFilter(f"{key!r} on {field!r} needs a number, got {value!r}")
                out.append(Condition(field, op, value))
            else:
                out.append(Condition(field, op, _scalar(field, value)))
    return out


def matches(conditions: Iterable[Condition], metadata: Mapping[str, Any]) -> bool:
    return all(c.matches(metadata) for c in conditions)
