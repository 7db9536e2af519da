"""Integer parameters bounded to what the stores hold.

SQLite and PostgreSQL ``BIGINT`` hold signed 64-bit integers; version numbers are ``INTEGER``
columns (signed 32-bit on PostgreSQL). A parameter past these bounds is a 422 naming it,
never an overflow inside the store (a 500). JSON bodies are bounded by the JSON edge
(:mod:`herald.security.json_edge`); these aliases cover query and path parameters.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from herald.security.json_edge import INT32_MAX, INT64_MAX

__all__ = ["INT32_MAX", "INT64_MAX", "After", "Offset", "VersionPath"]

After = Annotated[
    int, Query(ge=0, le=INT64_MAX, description="Only rows after this sequence number.")
]
Offset = Annotated[int, Query(ge=0, le=INT64_MAX, description="Rows to skip.")]
VersionPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="Version number (1, 2, ...).")]
