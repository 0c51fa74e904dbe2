"""Tables of catalogue admission: proposals and the catalogue versions their approval created.

The catalogue in effect is ledgers/*.yaml plus every approved proposal, applied in version order
(app/catalog/admission/live.py). A version row's `stamp` is random, so a version rolled back and made
again (tests, a failed approval) never shares a stamp with the one that was lost.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class CatalogProposal(Base):
    __tablename__ = "catalog_proposal"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # fields | extension
    ledger: Mapped[str] = mapped_column(
        String(41)
    )  # the ledger that gets the fields (new code for an extension)
    # extension only: {"label", "parent", "cardinality", "description"}
    extension: Mapped[dict | None] = mapped_column(JSONB)
    fields: Mapped[list] = mapped_column(JSONB)  # field specs as in ledgers/*.yaml
    codelists: Mapped[list] = mapped_column(JSONB, default=list)  # new code lists the fields use
    reason: Mapped[str] = mapped_column(String(500))
    # "already in the catalogue" candidates found when proposed, and the proposer's answer to them
    candidates: Mapped[list] = mapped_column(JSONB, default=list)
    not_duplicate_reason: Mapped[str | None] = mapped_column(String(500))
    department_code: Mapped[str | None] = mapped_column(String(41))  # the proposing department
    state: Mapped[str] = mapped_column(String(10), default="proposed")  # proposed | approved | rejected
    proposed_by: Mapped[str] = mapped_column(String(120))
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_by: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    comment: Mapped[str | None] = mapped_column(String(500))  # the admin's comment on the decision
    applied_version: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_catalog_proposal_state", "state", "id"),)


class CatalogVersion(Base):
    __tablename__ = "catalog_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    stamp: Mapped[str] = mapped_column(String(36), unique=True)
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_proposal.id"))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
