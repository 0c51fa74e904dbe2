"""Cell conversion for imported rows: raw text -> catalogue-typed values plus per-cell issues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.imports.mapping import ColumnMap
from app.imports.reading import RawRow


@dataclass(frozen=True)
class CellIssue:
    row_no: int
    column: str
    raw: str | None
    field: str | None
    code: str
    message: str  # zh-CN
    severity: str  # 'error' | 'warning'


def convert_row(ledger: str, mapping: list[ColumnMap],
                row: RawRow) -> tuple[dict[str, Any], list[CellIssue]]:
    """Values keyed by field code, already coerced to catalogue types (IDs 18-digit, dates, codes)."""
    raise NotImplementedError
