"""Header -> catalogue field: by label, by declared aliases, by a mapping saved for the legacy form."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ColumnMap:
    index: int
    header: str
    field: str | None
    how: str  # 'label' | 'alias' | 'saved' | 'unknown' | 'manual'


def propose_mapping(ledger: str, headers: list[str],
                    saved: dict[str, str] | None = None) -> list[ColumnMap]:
    raise NotImplementedError
