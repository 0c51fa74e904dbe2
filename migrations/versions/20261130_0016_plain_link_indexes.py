"""plain indexes on link ends and extension parents, for readers without the soft-delete filter

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-30 06:00:00

The one-to-one ends (`uq_<rel>_from`, `uq_<rel>_to`), the pair index and the single-record extension
parents (`uq_<lg>_parent`) are partial indexes `WHERE deleted_at IS NULL`. The service always says
that, but a BI tool or an export joining `rel_residence` to `lg_person` does not, and PostgreSQL can
only use a partial index when the query implies its predicate: such a join read the link table
whole. Every link table now has a plain index on `from_id` and on `to_id`, every extension
ledger on `parent_id`. The tables are taken from the database (this revision must not follow
later catalogue changes), and an index already present under the same name is kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES_WITH = """
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname LIKE :prefix
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = :column
                  AND NOT a.attisdropped)
    ORDER BY 1"""


def _tables(prefix: str, column: str) -> list[str]:
    rows = op.get_bind().execute(sa.text(_TABLES_WITH), {"prefix": prefix, "column": column})
    return [r[0] for r in rows]


def _index_exists(name: str) -> bool:
    return op.get_bind().execute(sa.text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one()


def _plain_indexes() -> list[tuple[str, str, str, str]]:
    """(index, table, column, the partial index it complements or '') per index of this revision."""
    out = []
    for t in _tables("rel\\_%", "to_id"):
        out.append((f"ix_{t}_from", t, "from_id", ""))
        out.append((f"ix_{t}_to", t, "to_id", f"uq_{t}_to"))
    for t in _tables("lg\\_%", "parent_id"):
        out.append((f"ix_{t}_parent", t, "parent_id", f"uq_{t}_parent"))
    return out


def upgrade() -> None:
    for name, table, column, _ in _plain_indexes():
        if not _index_exists(name):
            op.create_index(name, table, [column], unique=False)


def downgrade() -> None:
    for name, table, _, partial in _plain_indexes():
        # ix_<rel>_to and ix_<lg>_parent predate this revision where no partial unique index exists
        # (many-to-many ends, multi-record extensions): those stay.
        if _index_exists(name) and (not partial or _index_exists(partial)):
            op.drop_index(name, table_name=table)
