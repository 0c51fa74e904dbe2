"""Candidate pairs for rows without a natural key (interface used by the import jobs).

`find_candidates` never merges anything: it only scores incoming rows against the ledger and
returns the likely duplicates; `enqueue_candidates` writes them to the review queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy


@dataclass(frozen=True)
class Candidate:
    """One incoming row (by index in the caller's list) that probably is an existing record."""

    row_index: int
    record_id: int
    score: float
    reasons: list[str] = field(default_factory=list)  # zh-CN, e.g. "姓名相同（繁简）"


def find_candidates(
    conn: sqlalchemy.Connection,
    ledger: str,
    rows: list[dict[str, Any]],
    *,
    region_prefix: str | None = None,
) -> list[Candidate]:
    """Score `rows` (field code -> value, WITHOUT a natural key) against `ledger`.

    Blocking happens inside; only pairs above the review threshold are returned, best first per
    row. Nothing is merged.
    """
    return []


def enqueue_candidates(
    conn: sqlalchemy.Connection,
    ledger: str,
    candidates: list[Candidate],
    *,
    source: str,
    batch_id: int | None,
) -> None:
    """Write `candidates` to the review queue (table owned by app.dedupe)."""
    return None
