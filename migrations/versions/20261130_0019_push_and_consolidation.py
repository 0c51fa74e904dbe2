"""department push (events, source freshness) and the legacy report register

Revision ID: 0019
Revises: 0014
Create Date: 2026-11-30 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "push_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.String(length=41), nullable=False),
        sa.Column("source_event_id", sa.String(length=100), nullable=False),
        sa.Column("ledger", sa.String(length=41), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("op", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("fields", postgresql.ARRAY(sa.String(length=41)), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_event")),
        sa.UniqueConstraint("source", "source_event_id", name=op.f("uq_push_event_source_source_event_id")),
    )
    op.create_index("ix_push_event_record", "push_event", ["ledger", "record_id"], unique=False)
    op.create_table(
        "push_source_state",
        sa.Column("source", sa.String(length=41), nullable=False),
        sa.Column("last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_records", sa.BigInteger(), nullable=False),
        sa.Column("stale_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_push_source_state")),
    )
    op.create_table(
        "legacy_form",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("department_code", sa.String(length=41), nullable=False),
        sa.Column("frequency", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("target_ledger", sa.String(length=41), nullable=True),
        sa.Column("template_id", sa.BigInteger(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"], ["report_template.id"], name=op.f("fk_legacy_form_template_id_report_template")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legacy_form")),
    )
    op.create_index("ix_legacy_form_state", "legacy_form", ["state", "department_code"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_legacy_form_state", table_name="legacy_form")
    op.drop_table("legacy_form")
    op.drop_table("push_source_state")
    op.drop_index("ix_push_event_record", table_name="push_event")
    op.drop_table("push_event")
