"""The legacy report register: every routine form that was sent to townships before the reform."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class LegacyForm(Base):
    __tablename__ = "legacy_form"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department_code: Mapped[str] = mapped_column(String(41))  # the issuing department
    frequency: Mapped[str] = mapped_column(String(20))  # monthly | quarterly | yearly | ...
    level: Mapped[str] = mapped_column(String(20))  # city | district | township: who issues it
    headers: Mapped[list[str]] = mapped_column(JSONB)  # column header texts, as printed on the form
    state: Mapped[str] = mapped_column(String(10), default="active")  # active | retired
    target_ledger: Mapped[str | None] = mapped_column(String(41))  # set at go-live
    template_id: Mapped[int | None] = mapped_column(ForeignKey("report_template.id"))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_legacy_form_state", "state", "department_code"),)
