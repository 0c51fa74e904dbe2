"""one-to-one relations: at most one live link per record on the "one" side

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-29 23:40:00

A person had two residences because nothing but the API's good intentions held `forward_many: false`.
The rule now lives in the database: a partial unique index on from_id over live (not soft-deleted)
links. Existing duplicates are not resolved silently: the upgrade stops and names the relation, so
the townships decide which link is right.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The one-to-one relations as of this revision (a migration must not follow later catalogue changes).
ONE_TO_ONE = ["rel_residence", "rel_thing_organisation", "rel_thing_house"]


def upgrade() -> None:
    conn = op.get_bind()
    clashes = []
    for t in ONE_TO_ONE:
        n = conn.execute(
            sa.text(
                f"SELECT count(*) FROM (SELECT from_id FROM {t} WHERE deleted_at IS NULL "
                "GROUP BY from_id HAVING count(*) > 1) d"
            )
        ).scalar_one()
        if n:
            clashes.append(f"{t}: {n} records")
    if clashes:
        raise RuntimeError(
            "one-to-one relations hold more than one live link for some records; soft-delete the wrong "
            "links (set deleted_at) before upgrading: " + "; ".join(clashes)
        )
    for t in ONE_TO_ONE:
        op.create_index(
            f"uq_{t}_from", t, ["from_id"], unique=True, postgresql_where=sa.text("deleted_at IS NULL")
        )


def downgrade() -> None:
    for t in ONE_TO_ONE:
        op.drop_index(f"uq_{t}_from", table_name=t, postgresql_where=sa.text("deleted_at IS NULL"))
