"""households (户): the household ledger, membership with the relation to the head, the house it lives in

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 02:30:00

`relation_to_head` moves from rel_residence to rel_household_member: one truth. Links that carry it
are not dropped: every house whose live residents have a relation to the head becomes one household
(户号 = the house's village code + a running number per village, 户别 家庭户) with those residents as
members and the house as its home. Residents without one stay residents only. The downgrade puts the
value back on the residence link of each member who lives in the household's house.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")


def _link_table(name: str, comment: str, *attributes: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("region_code", sa.String(length=15, collation="C"), nullable=False),
        sa.Column("from_id", sa.BigInteger(), nullable=False),
        sa.Column("to_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *attributes,
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        comment=comment,
    )
    op.create_index(f"ix_{name}_region_id", name, ["region_code", "id"], unique=False)
    op.create_index(f"uq_{name}_pair", name, ["from_id", "to_id"], unique=True, postgresql_where=LIVE)
    op.create_index(f"uq_{name}_from", name, ["from_id"], unique=True, postgresql_where=LIVE)
    op.create_index(f"ix_{name}_to", name, ["to_id"], unique=False)


def upgrade() -> None:
    op.create_table(
        "lg_household",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("region_code", sa.String(length=15, collation="C"), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "provenance",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "flags",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("household_no", sa.String(length=18), nullable=True, comment="户号"),
        sa.Column("household_kind", sa.String(length=20), nullable=True, comment="户别"),
        sa.Column("hukou_no", sa.String(length=20), nullable=True, comment="户口簿户号"),
        sa.Column("registered_on", sa.Date(), nullable=True, comment="立户日期"),
        sa.Column("remark", sa.String(length=500), nullable=True, comment="备注"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lg_household")),
        comment="户",
    )
    op.create_index("ix_lg_household_region_id", "lg_household", ["region_code", "id"], unique=False)
    op.create_index(
        "uq_lg_household_household_no", "lg_household", ["household_no"], unique=True, postgresql_where=LIVE
    )
    _link_table(
        "rel_household_member",
        "户成员",
        sa.Column("relation_to_head", sa.String(length=20), nullable=True, comment="与户主关系"),
        sa.Column("since", sa.Date(), nullable=True, comment="入户日期"),
    )
    _link_table("rel_household_house", "户居住房屋")
    _households_from_residence()
    op.drop_column("rel_residence", "relation_to_head")


def _households_from_residence() -> None:
    """One household per house whose live residents carry a relation to the head (see the docstring)."""
    op.execute("""
        CREATE TEMP TABLE hh_seed ON COMMIT DROP AS
        SELECT h.id AS house_id, left(h.region_code, 12) AS village, h.region_code,
               row_number() OVER (PARTITION BY left(h.region_code, 12) ORDER BY h.id) AS n
        FROM lg_house h
        WHERE h.deleted_at IS NULL AND EXISTS (
            SELECT 1 FROM rel_residence r
            WHERE r.to_id = h.id AND r.deleted_at IS NULL AND r.relation_to_head IS NOT NULL)""")
    op.execute("""
        ALTER TABLE hh_seed ADD COLUMN household_id bigint;
        UPDATE hh_seed SET household_id = nextval(pg_get_serial_sequence('lg_household', 'id'))""")
    op.execute("""
        INSERT INTO lg_household (id, region_code, household_no, household_kind, provenance)
        OVERRIDING SYSTEM VALUE
        SELECT household_id, region_code, village || lpad(n::text, greatest(4, length(n::text)), '0'), '1',
               jsonb_build_object('*', jsonb_build_object('source', 'migration:0012', 'at', now()))
        FROM hh_seed""")
    # History: the households are new records (one row per field set), so "enter once" has a start.
    op.execute("""
        INSERT INTO ledger_history (ledger, record_id, region_code, op, field, before, after, source, actor)
        SELECT 'household', h.id, h.region_code, 'create', f.field, NULL, f.value, 'migration:0012',
               'system:migration'
        FROM lg_household h JOIN hh_seed s ON s.household_id = h.id
        CROSS JOIN LATERAL (VALUES ('household_no', to_jsonb(h.household_no)),
                                   ('household_kind', to_jsonb(h.household_kind))) f(field, value)""")
    op.execute("""
        INSERT INTO rel_household_house (region_code, from_id, to_id)
        SELECT region_code, household_id, house_id FROM hh_seed""")
    op.execute("""
        INSERT INTO rel_household_member (region_code, from_id, to_id, relation_to_head, since)
        SELECT r.region_code, r.from_id, s.household_id, r.relation_to_head, r.since
        FROM rel_residence r JOIN hh_seed s ON s.house_id = r.to_id
        WHERE r.deleted_at IS NULL AND r.relation_to_head IS NOT NULL""")


def downgrade() -> None:
    op.add_column(
        "rel_residence",
        sa.Column("relation_to_head", sa.String(length=20), nullable=True, comment="与户主关系"),
    )
    op.execute("""
        UPDATE rel_residence r SET relation_to_head = m.relation_to_head
        FROM rel_household_member m JOIN rel_household_house hh ON hh.from_id = m.to_id AND hh.deleted_at IS NULL
        WHERE m.deleted_at IS NULL AND m.from_id = r.from_id AND hh.to_id = r.to_id AND r.deleted_at IS NULL""")
    op.execute("DELETE FROM ledger_history WHERE ledger = 'household'")
    for name in ("rel_household_house", "rel_household_member"):
        op.drop_index(f"ix_{name}_to", table_name=name)
        op.drop_index(f"uq_{name}_from", table_name=name, postgresql_where=LIVE)
        op.drop_index(f"uq_{name}_pair", table_name=name, postgresql_where=LIVE)
        op.drop_index(f"ix_{name}_region_id", table_name=name)
        op.drop_table(name)
    op.drop_index("uq_lg_household_household_no", table_name="lg_household", postgresql_where=LIVE)
    op.drop_index("ix_lg_household_region_id", table_name="lg_household")
    op.drop_table("lg_household")
