"""audit chain off the request path: rows inserted unsealed, sealed later in chain_pos order

Revision ID: 0014
Revises: 0011
Create Date: 2026-11-30 02:20:00

Existing rows were chained under the old global lock, in id order, with the same digest: they get
chain_pos = their rank by id and keep their hashes (re-hashing here would launder earlier tampering).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Content columns: what a seal may never change (the hash covers them).
_CONTENT = "id, at, actor, action, path, ledger, record_ids, fields, detail, request_id"

_SEAL_ONLY = f"""
    CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- The chainer's one update: an unsealed row gets its position and hashes, content untouched.
        -- (An unsealed row may carry a hash: one appended by a process still running the code before
        -- this revision during a rolling upgrade. The seal replaces it.)
        IF TG_OP = 'UPDATE' AND OLD.chain_pos IS NULL
           AND NEW.chain_pos IS NOT NULL AND NEW.hash IS NOT NULL AND NEW.prev_hash IS NOT NULL
           AND ROW({", ".join("NEW." + c.strip() for c in _CONTENT.split(","))})
               IS NOT DISTINCT FROM ROW({", ".join("OLD." + c.strip() for c in _CONTENT.split(","))}) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_log is append-only';
    END $$
"""

_APPEND_ONLY = """
    CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only';
    END $$
"""


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("chain_pos", sa.BigInteger(), nullable=True))
    op.alter_column("audit_log", "prev_hash", existing_type=sa.String(length=64), nullable=True)
    op.alter_column("audit_log", "hash", existing_type=sa.String(length=64), nullable=True)
    op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    op.execute("""
        UPDATE audit_log a SET chain_pos = r.pos
        FROM (SELECT id, row_number() OVER (ORDER BY id) AS pos FROM audit_log) r WHERE a.id = r.id
    """)
    op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    op.create_index("ux_audit_log_chain_pos", "audit_log", ["chain_pos"], unique=True)
    op.create_index(
        "ix_audit_log_unsealed",
        "audit_log",
        ["id"],
        unique=False,
        postgresql_where=sa.text("chain_pos IS NULL"),
    )
    op.execute(_SEAL_ONLY)


def downgrade() -> None:
    # Unsealed rows cannot take part in the old chain: seal them first (`onetable audit chain`).
    op.execute(_APPEND_ONLY)
    op.drop_index(
        "ix_audit_log_unsealed", table_name="audit_log", postgresql_where=sa.text("chain_pos IS NULL")
    )
    op.drop_index("ux_audit_log_chain_pos", table_name="audit_log")
    op.alter_column("audit_log", "hash", existing_type=sa.String(length=64), nullable=False)
    op.alter_column("audit_log", "prev_hash", existing_type=sa.String(length=64), nullable=False)
    op.drop_column("audit_log", "chain_pos")
