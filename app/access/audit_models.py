"""Audit log: append-only and hash-chained, so an edited or deleted row breaks the chain."""

from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, DateTime, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(30))  # read_sensitive | create | update | delete | grant.* …
    path: Mapped[str] = mapped_column(String(20))  # rest | graphql | report | export | cli
    ledger: Mapped[str | None] = mapped_column(String(41))
    record_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), default=list)
    fields: Mapped[list[str]] = mapped_column(ARRAY(String(41)), default=list)
    detail: Mapped[dict] = mapped_column(JSONB, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_actor_at", "actor", "at"),
        Index("ix_audit_log_ledger_at", "ledger", "at"),
    )
