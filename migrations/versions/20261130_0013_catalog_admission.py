"""catalog admission: proposals of new data items and the catalogue versions approvals create

Version 1 (stamp "yaml") is ledgers/*.yaml alone. Downgrading drops the bookkeeping only: columns and
tables that approvals added stay (drop them by hand, or move their fields into ledgers/*.yaml).

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-30 02:10:22.164143
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_proposal",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("ledger", sa.String(length=41), nullable=False),
        sa.Column("extension", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("fields", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("codelists", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("candidates", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("not_duplicate_reason", sa.String(length=500), nullable=True),
        sa.Column("department_code", sa.String(length=41), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("proposed_by", sa.String(length=120), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.String(length=500), nullable=True),
        sa.Column("applied_version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_proposal")),
    )
    op.create_index("ix_catalog_proposal_state", "catalog_proposal", ["state", "id"], unique=False)
    op.create_table(
        "catalog_version",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stamp", sa.String(length=36), nullable=False),
        sa.Column("proposal_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["catalog_proposal.id"],
            name=op.f("fk_catalog_version_proposal_id_catalog_proposal"),
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_catalog_version")),
        sa.UniqueConstraint("stamp", name=op.f("uq_catalog_version_stamp")),
    )
    op.execute(
        "INSERT INTO catalog_version (version, stamp, note, created_by) "
        "VALUES (1, 'yaml', 'ledgers/*.yaml', 'migration 0013')"
    )


def downgrade() -> None:
    op.drop_table("catalog_version")
    op.drop_index("ix_catalog_proposal_state", table_name="catalog_proposal")
    op.drop_table("catalog_proposal")
