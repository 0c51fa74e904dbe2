"""dedupe: review queue of probable duplicates (dedupe_candidate) and merge records (dedupe_merge)

Revision ID: 0018
Revises: 0014
Create Date: 2026-11-30 05:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dedupe_candidate",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("ledger", sa.String(length=41), nullable=False),
        sa.Column("region_code", sa.String(length=15, collation="C"), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("other_id", sa.BigInteger(), nullable=True),
        sa.Column("incoming", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("row_index", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=10), server_default=sa.text("'open'"), nullable=False),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dedupe_candidate")),
    )
    op.create_index(
        "ix_dedupe_candidate_open",
        "dedupe_candidate",
        ["ledger", "region_code", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_dedupe_candidate_batch", "dedupe_candidate", ["batch_id"], unique=False)
    op.create_index(
        "uq_dedupe_candidate_pair",
        "dedupe_candidate",
        [
            "ledger",
            "record_id",
            sa.text("coalesce(other_id, 0)"),
            sa.text("coalesce(batch_id, 0)"),
            sa.text("coalesce(row_index, -1)"),
        ],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "dedupe_merge",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("candidate_id", sa.BigInteger(), nullable=False),
        sa.Column("ledger", sa.String(length=41), nullable=False),
        sa.Column("survivor_id", sa.BigInteger(), nullable=False),
        sa.Column("loser_id", sa.BigInteger(), nullable=True),
        sa.Column("decisions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("survivor_before", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("relinks", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=120), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dedupe_merge")),
    )
    op.create_index("ix_dedupe_merge_survivor", "dedupe_merge", ["ledger", "survivor_id"], unique=False)
    op.create_index("ix_dedupe_merge_loser", "dedupe_merge", ["ledger", "loser_id"], unique=False)


def downgrade() -> None:
    op.drop_table("dedupe_merge")
    op.drop_table("dedupe_candidate")
