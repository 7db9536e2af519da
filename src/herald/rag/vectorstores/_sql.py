"""Translate filter conditions to SQL: SQLite JSON1 and PostgreSQL JSONB."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from herald.rag.filters import Condition

_CMP = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def sqlite_where(
    conditions: Sequence[Condition], column: str = "metadata"
) -> tuple[str, list[Any]]:
    """``(sql, params)`` for SQLite (``?`` placeholders); ``("1", [])`` when empty."""
    parts: list[str] = []
    params: list[Any] = []
    for c in conditions:
        path = "$." + json.dumps(c.field)
        expr = f"json_extract({column}, ?)"
        if c.op in ("eq", "ne"):
            if c.op == "eq":
                parts.append(f"{expr} = ?")
                params += [path, c.value]
            else:
                parts.append(f"({expr} IS NULL OR {expr} != ?)")
                params += [path, path, c.value]
        elif c.op == "in":
            parts.append(f"{expr} IN ({', '.join('?' for _ in c.value)})")
            params += [path, *c.value]
        else:
            parts.append(
                f"(json_type({column}, ?) IN ('integer', 'real') AND {expr} {_CMP[c.op]} ?)"
            )
            params += [path, path, c.value]
    return (" AND ".join(parts) or "1"), params


def pg_where(conditions: Sequence[Condition], column: str = "metadata") -> tuple[str, list[Any]]:
    """``(sql, params)`` for PostgreSQL JSONB (``%s`` placeholders); ``("TRUE", [])`` when empty."""
    parts: list[str] = []
    params: list[Any] = []
    for c in conditions:
        if c.op == "eq":
            parts.append(f"{column} @> %s::jsonb")
            params.append(json.dumps({c.field: c.value}))
        elif c.op == "ne":
            parts.append(f"NOT ({column} @> %s::jsonb)")
            params.append(json.dumps({c.field: c.value}))
        elif c.op == "in":
            parts.append("(" + " OR ".join(f"{column} @> %s::jsonb" for _ in c.value) + ")")
            params += [json.dumps({c.field: v}) for v in c.value]
        else:
            parts.append(
                f"(jsonb_typeof({column} -> %s) = 'number' "
                f"AND ({column} ->> %s)::double precision {_CMP[c.op]} %s)"
            )
            params += [c.field, c.field, float(c.value)]
    return (" AND ".join(parts) or "TRUE"), params
