"""Report tables: templates and their versions (with admission state), tasks, pre-filled rows, gap cells,
comments and transitions.

Relationships are lazy="raise": every read is an explicit query, so no request loops over lazy loads.
Pre-filled rows are a snapshot taken by one INSERT … SELECT per task (app/report/dispatch.py); gap cells
live apart, keyed by the row key, so a refresh of the snapshot keeps what the township typed.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base


class ReportTemplate(Base):
    __tablename__ = "report_template"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    department_code: Mapped[str] = mapped_column(String(41))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)  # the owning department
    code: Mapped[str] = mapped_column(String(41))
    name: Mapped[str] = mapped_column(String(100))
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    versions: Mapped[list[ReportTemplateVersion]] = relationship(back_populates="template", lazy="raise")

    __table_args__ = (UniqueConstraint("department_code", "code"),)


class ReportTemplateVersion(Base):
    """One immutable version of a template; admission (draft → submitted → approved / refused) is per version."""

    __tablename__ = "report_template_version"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("report_template.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(12), default="draft")  # draft | submitted | approved | refused
    reason: Mapped[str | None] = mapped_column(String(500))  # refusal reason, or why it was auto-approved
    analysis: Mapped[dict | None] = mapped_column(JSONB)  # admission analysis, frozen at submission
    pull_only: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(120))

    template: Mapped[ReportTemplate] = relationship(back_populates="versions", lazy="raise")

    __table_args__ = (UniqueConstraint("template_id", "version"),)


class ReportTask(Base):
    """One township's report for one period of one template version."""

    __tablename__ = "report_task"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("report_template_version.id"))
    period: Mapped[str] = mapped_column(String(20))
    township_code: Mapped[str] = mapped_column(String(15))  # 12-digit code of the township
    township_name: Mapped[str] = mapped_column(String(100))
    # dispatched | in_progress | submitted | returned | approved (overdue is derived from the deadline)
    state: Mapped[str] = mapped_column(String(12), default="dispatched")
    deadline: Mapped[date] = mapped_column(Date)
    dispatched_by: Mapped[str] = mapped_column(String(120))
    dispatched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    prefilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    column_count: Mapped[int] = mapped_column(Integer, default=0)
    gap_column_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("version_id", "period", "township_code"),
        Index("ix_report_task_township", "township_code", "state"),
    )


class ReportRow(Base):
    """A pre-filled row: the pulled values (data) and where each came from (prov), as JSON."""

    __tablename__ = "report_row"

    task_id: Mapped[int] = mapped_column(ForeignKey("report_task.id", ondelete="CASCADE"), primary_key=True)
    row_key: Mapped[str] = mapped_column(
        String(40), primary_key=True
    )  # record id, village code or code value
    row_no: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(200))
    record_id: Mapped[int | None] = mapped_column(BigInteger)
    region_code: Mapped[str | None] = mapped_column(String(15))
    data: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    prov: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    links: Mapped[dict] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))  # write-back targets


class ReportCell(Base):
    """A gap cell's value. origin: prefill (from a written-back ledger field) | typed | upload."""

    __tablename__ = "report_cell"

    task_id: Mapped[int] = mapped_column(ForeignKey("report_task.id", ondelete="CASCADE"), primary_key=True)
    row_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    column: Mapped[str] = mapped_column(String(41), primary_key=True)
    value: Mapped[object | None] = mapped_column(JSONB)
    origin: Mapped[str] = mapped_column(String(10))
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReportComment(Base):
    """A reviewer's comment on a task, or on one cell of it (row_key + column)."""

    __tablename__ = "report_comment"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("report_task.id", ondelete="CASCADE"), index=True)
    row_key: Mapped[str | None] = mapped_column(String(40))
    column: Mapped[str | None] = mapped_column(String(41))
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReportTransition(Base):
    """Every state change of a template version or a task: who, when, from, to, why."""

    __tablename__ = "report_transition"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("report_template_version.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[int | None] = mapped_column(ForeignKey("report_task.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReportReject(Base):
    """An uploaded cell that failed validation: kept with what was typed, where, and why, until the
    township fixes that cell (any later valid save of it removes the reject). Submit waits for none."""

    __tablename__ = "report_reject"

    task_id: Mapped[int] = mapped_column(ForeignKey("report_task.id", ondelete="CASCADE"), primary_key=True)
    row_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    column: Mapped[str] = mapped_column(String(41), primary_key=True)
    raw: Mapped[str | None] = mapped_column(String(500))  # as typed in the sheet (the filler's own value)
    sheet_cell: Mapped[str] = mapped_column(String(12))  # e.g. "D7"
    code: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
