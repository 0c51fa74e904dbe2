"""Where a statement reads ledger rows from: the reader's policy's table, a relation's link table.

Builders outside app/access and app/query take their FROM items here (tests/test_ledger_table_reads.py
keeps it so), so a ledger table is only ever reached through the policy that scopes and masks it: pair
`ledger_table(policy)` with `policy.scope_clause(t)` and read its values through `policy.column`.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.sql.selectable import FromClause

from app.access.policy import LedgerPolicy
from app.catalog.model import Relation
from app.db.ledger_tables import tables


def ledger_table(policy: LedgerPolicy, alias: str | None = None) -> FromClause:
    """The policy's ledger table (or an alias of it): rows still to be scoped by that policy."""
    return policy.table.alias(alias) if alias else policy.table


def link_table(relation: Relation, alias: str | None = None) -> Table | FromClause:
    """A relation's link table (from_id, to_id, link attributes). Its rows say which records are linked;
    the records themselves are read through their ledgers' policies, and link attributes carry no
    grants of their own (callers show only those a user may read by default)."""
    t = tables().relations[relation.code]
    return t.alias(alias) if alias else t


def history_table() -> Table:
    """Every ledger's change history (record, field, before, after): read one record's rows, the
    before/after text masked through that ledger's policy (`policy.mask_history_value`)."""
    return tables().history
