"""Audit log: append-only, and sealed into a hash chain after commit, so an edited or deleted row breaks it.

Requests insert rows with no hash (chain_pos, prev_hash and hash NULL); the chainer
(app/access/audit_chain.py) seals committed rows in order, giving each its position in the chain.
The trigger of migration 0014 allows exactly that one update: NULL -> sealed, content unchanged.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, DateTime, Identity, Index, String, func, text
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
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Set once by the chainer: position in the chain (1, 2, ...; commit order, not id order), the
    # previous position's hash and this row's hash. NULL while the row waits to be sealed.
    chain_pos: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_actor_at", "actor", "at"),
        Index("ix_audit_log_ledger_at", "ledger", "at"),
        Index("ux_audit_log_chain_pos", "chain_pos", unique=True),  # one row per position: no fork
        Index("ix_audit_log_unsealed", "id", postgresql_where=text("chain_pos IS NULL")),
    )
