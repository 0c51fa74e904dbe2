"""Import jobs: a batch per uploaded file, its staged rows with per-row outcome, the file itself, and
column mappings saved per legacy form (reused next month).

A batch moves draft -> dry_run -> awaiting_approval -> approved -> committed -> undone; `failed` when
a commit could not finish (a retry of the commit starts again from the approved state). Staged rows
keep the raw cells as typed, the converted values, the outcome of the last dry run or commit, the
record they landed in, and for undo the values the import replaced (`before`) and wrote (`after`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

STATUSES = ("draft", "dry_run", "awaiting_approval", "approved", "committed", "undone", "failed")
OUTCOMES = ("create", "update", "unchanged", "duplicate", "candidate", "error")


class ImportBatch(Base):
    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ledger: Mapped[str] = mapped_column(String(41))
    township_code: Mapped[str] = mapped_column(
        String(15), index=True
    )  # 12-digit code of the importing township
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_size: Mapped[int] = mapped_column(BigInteger)
    sheet_name: Mapped[str | None] = mapped_column(String(100))
    sheet_names: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    form_name: Mapped[str | None] = mapped_column(
        String(200)
    )  # the legacy form this sheet is (for saved mappings)
    headers: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    # [{index, header, field, how}] as proposed or adjusted; what the dry run and commit use
    mapping: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    # [{column, header, field, code, message}]: whole columns refused (field not writable, unknown)
    column_issues: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    skipped: Mapped[list[Any]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb")
    )  # [[row_no, reason]]
    status: Mapped[str] = mapped_column(String(20), server_default="draft")
    counts: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    uploader: Mapped[str] = mapped_column(String(120))  # actor string of the uploading principal
    uploader_user_id: Mapped[int] = mapped_column(BigInteger)  # whose LedgerPolicy the import writes through
    approved_by: Mapped[str | None] = mapped_column(String(120))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    committed_by: Mapped[str | None] = mapped_column(String(120))
    committed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    undone_by: Mapped[str | None] = mapped_column(String(120))
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImportFile(Base):
    """The uploaded bytes, kept so another sheet can be chosen and the batch re-read."""

    __tablename__ = "import_file"

    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id", ondelete="CASCADE"), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class ImportRow(Base):
    __tablename__ = "import_row"

    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id", ondelete="CASCADE"), primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1-based row of the sheet (CSV: line)
    raw: Mapped[list[str | None]] = mapped_column(JSONB)  # the cells as typed
    values: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # converted, by field code
    outcome: Mapped[str | None] = mapped_column(
        String(12)
    )  # create | update | unchanged | duplicate | candidate | error
    record_id: Mapped[int | None] = mapped_column(BigInteger)
    duplicate_of: Mapped[int | None] = mapped_column(Integer)  # row_no of the first row with the same key
    # [{column, raw, field, code, message, severity}]
    issues: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # values replaced by the commit (undo)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # values written by the commit
    links: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB
    )  # household / house / link ids made by the commit

    __table_args__ = (Index("ix_import_row_batch_outcome", "batch_id", "outcome"),)


class ImportMapping(Base):
    """A column mapping saved for a legacy form (header text -> field code), per ledger."""

    __tablename__ = "import_mapping"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ledger: Mapped[str] = mapped_column(String(41))
    form_name: Mapped[str] = mapped_column(String(200))
    columns: Mapped[dict[str, str]] = mapped_column(JSONB)  # header -> field code ("" for ignored)
    saved_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("ledger", "form_name"),)
