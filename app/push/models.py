"""Tables of department push: the events applied per source, and each source's freshness.

`push_event` is what makes a push idempotent: one row per `(source, source_event_id)` that was
applied, found unchanged or superseded, written in the same transaction as the values it carried.
Rejected records leave no row (they are audited), so a corrected record may reuse its event id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, String, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class PushEvent(Base):
    __tablename__ = "push_event"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(String(41))  # the pushing department's code, e.g. mzj
    source_event_id: Mapped[str] = mapped_column(String(100))
    ledger: Mapped[str] = mapped_column(String(41))
    record_id: Mapped[int | None] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(20))  # upsert | death | moved_out
    status: Mapped[str] = mapped_column(String(12))  # applied | unchanged | superseded
    fields: Mapped[list[str]] = mapped_column(ARRAY(String(41)))  # the items the event carried
    effective_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(120))
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("source", "source_event_id"),
        Index("ix_push_event_record", "ledger", "record_id"),
    )


class PushSourceState(Base):
    """When each source last pushed, and since when it is overdue (alerts read stale_since)."""

    __tablename__ = "push_source_state"

    source: Mapped[str] = mapped_column(String(41), primary_key=True)
    last_push_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_records: Mapped[int] = mapped_column(BigInteger, default=0)
    stale_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
