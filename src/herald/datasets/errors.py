"""Errors of the data set capability (see ``herald.errors`` for the whole tree).

HeraldError
└── DatasetError          a data set cannot be read or is invalid (422); ``details`` holds
                          {"errors": [{"row", "field", "problem"}, ...], "error_count": N}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from herald.errors import HeraldError


class DatasetError(HeraldError):
    """A data set cannot be read, has no rows, lacks a column, or has invalid rows."""

    code = "invalid_dataset"
    status = 422


@dataclass(frozen=True)
class RowError:
    """One problem in one row: ``row`` is 1-based (a JSONL line number, a CSV data row)."""

    row: int
    field: str
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "problem": self.problem}

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.problem}"


def invalid_rows_error(source: str, errors: list[RowError], total: int) -> DatasetError:
    """One error for a data set with bad rows: the first few in the message, up to 50 in details."""
    shown = "; ".join(str(e) for e in errors[:5])
    more = f" (+{total - 5} more)" if total > 5 else ""
    return DatasetError(
        f"{total} problem(s) in {source}: {shown}{more}",
        details={"errors": [e.as_dict() for e in errors[:50]], "error_count": total},
    )
