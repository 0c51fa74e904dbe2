"""region_code in "C" collation, (region_code, id) indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 16:10:00

Division codes are digit strings: byte-wise collation lets one plain btree index serve subtree
prefixes (LIKE '500118101%') and region ordering on any server locale, and (region_code, id) makes a
township's page in keyset order a single index range scan.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The tables as of this revision (a migration must not follow later catalogue changes).
TABLES = [
    "lg_person",
    "lg_house",
    "lg_land",
    "lg_organisation",
    "lg_event",
    "lg_thing",
    "lg_disability",
    "lg_low_income",
    "rel_residence",
    "rel_land_contract",
    "rel_membership",
    "rel_event_person",
    "rel_event_house",
    "rel_event_land",
    "rel_event_organisation",
    "rel_thing_organisation",
    "rel_thing_house",
]


def upgrade() -> None:
    for t in TABLES:
        op.drop_index(f"ix_{t}_region", table_name=t)
        op.alter_column(t, "region_code", type_=sa.String(15, collation="C"), existing_nullable=False)
        op.create_index(f"ix_{t}_region_id", t, ["region_code", "id"])
    op.alter_column(
        "ledger_history", "region_code", type_=sa.String(15, collation="C"), existing_nullable=False
    )
    # A type change drops the column's statistics and autovacuum won't refresh them until ~10 % of rows
    # change: without this the planner guesses a handful of rows for a whole district.
    for t in [*TABLES, "ledger_history"]:
        op.execute(f"ANALYZE {t}")


def downgrade() -> None:
    op.alter_column("ledger_history", "region_code", type_=sa.String(15), existing_nullable=False)
    for t in TABLES:
        op.drop_index(f"ix_{t}_region_id", table_name=t)
        op.alter_column(t, "region_code", type_=sa.String(15), existing_nullable=False)
        op.create_index(
            f"ix_{t}_region", t, ["region_code"], postgresql_ops={"region_code": "varchar_pattern_ops"}
        )
