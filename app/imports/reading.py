"""Reading a legacy sheet (XLSX/XLS/CSV) into header labels and raw text rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RawRow:
    """One data row as the clerk typed it."""

    row_no: int  # 1-based Excel row number (CSV: line number)
    cells: tuple[str | None, ...]  # text of each column, None for blank


@dataclass
class SheetTable:
    file_name: str
    sheet_name: str
    sheet_names: list[str]
    headers: list[str]  # one flattened label per column ("户籍地址/村" for two-row headers)
    rows: list[RawRow]
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row_no, reason)


def read_table(path: Path, *, sheet: str | None = None) -> SheetTable:
    """XLSX/XLS/CSV; caps before reading; the parse runs in app/sheets' worker process."""
    raise NotImplementedError
