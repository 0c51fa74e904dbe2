"""Review queue of probable duplicates and the record of every merge (so it can be undone)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Double, Identity, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base
from app.db.ledger_tables import RegionCode


class DedupeCandidate(Base):
    """A pair for a reviewer: an existing record and either another record (`other_id`) or an
    incoming row without a natural key (`incoming`, from an import batch). Never merged without a
    decision."""

    __tablename__ = "dedupe_candidate"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ledger: Mapped[str] = mapped_column(String(41))
    # The existing record's area: a reviewer sees the candidate when this lies in its row scope.
    region_code: Mapped[str] = mapped_column(RegionCode)
    record_id: Mapped[int] = mapped_column(BigInteger)
    other_id: Mapped[int | None] = mapped_column(BigInteger)
    incoming: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    row_index: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(80))
    score: Mapped[float] = mapped_column(Double)
    reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)
    status: Mapped[str] = mapped_column(String(10), server_default=text("'open'"))  # open|merged|rejected
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index(
            "ix_dedupe_candidate_open",
            "ledger",
            "region_code",
            "id",
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_dedupe_candidate_batch", "batch_id"),
        # One open pair per (record, other record or batch row): enqueueing twice adds nothing.
        Index(
            "uq_dedupe_candidate_pair",
            "ledger",
            "record_id",
            text("coalesce(other_id, 0)"),
            text("coalesce(batch_id, 0)"),
            text("coalesce(row_index, -1)"),
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
    )


class DedupeMerge(Base):
    """One accepted merge: every value both sides held, what survived and why, links re-pointed."""

    __tablename__ = "dedupe_merge"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    candidate_id: Mapped[int] = mapped_column(BigInteger)
    ledger: Mapped[str] = mapped_column(String(41))
    survivor_id: Mapped[int] = mapped_column(BigInteger)
    loser_id: Mapped[int | None] = mapped_column(BigInteger)
    # field -> {"value", "from": survivor|loser|incoming, "rule": owner|recency|completeness|kept,
    #           "values": {side: value}}
    decisions: Mapped[dict[str, Any]] = mapped_column(JSONB)
    survivor_before: Mapped[dict[str, Any]] = mapped_column(JSONB)  # fields, provenance, version
    relinks: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    undone_by: Mapped[str | None] = mapped_column(String(120))

    __table_args__ = (
        Index("ix_dedupe_merge_survivor", "ledger", "survivor_id"),
        Index("ix_dedupe_merge_loser", "ledger", "loser_id"),
    )
