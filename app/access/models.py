"""Grants: grantee x ledger x field -> level, plus a row scope. See docs/access.md for the rules."""

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class Grant(Base):
    __tablename__ = "access_grant"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # role (optionally within org_unit_id) | org_unit | user | service_account
    grantee_type: Mapped[str] = mapped_column(String(20))
    role: Mapped[str | None] = mapped_column(String(32))
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    service_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_account.id", ondelete="CASCADE")
    )
    ledger: Mapped[str] = mapped_column(String(41))  # ledger code or "*"
    field: Mapped[str] = mapped_column(String(41))  # field code or "*"
    level: Mapped[str] = mapped_column(String(10))  # hidden | masked | read | write
    # On a masked field: may the grantee look records up by the exact value (eq / in)?
    allow_lookup: Mapped[bool] = mapped_column(Boolean, default=False)
    row_scope: Mapped[str] = mapped_column(String(12), default="own")  # own | regions | all
    regions: Mapped[list[str]] = mapped_column(ARRAY(String(15)), default=list)
    note: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_access_grant_lookup", "ledger", "grantee_type"),)


class AccessVersion(Base):
    """One row whose number every change of who may read what replaces (triggers, migration 0015):
    the key of every process's caller cache (app/access/cache.py)."""

    __tablename__ = "access_version"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
