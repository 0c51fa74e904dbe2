"""Fields a query may name: the base columns, typed like catalogue fields, and the ledger's own.

Looking a field up for a filter or a sort goes through the reader's policy (check_filter / check_sort)
first, so an unknown and a hidden name get the same 403 and no hidden name is confirmed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.sql.elements import ColumnElement

from app.access.policy import LedgerPolicy
from app.catalog.model import Field, FieldType

# Base columns every ledger row has and a query may filter or sort on (the policy's BASE_FILTERABLE).
BASE_FIELDS = {
    "id": Field("id", "记录编号", FieldType.integer),
    "region_code": Field("region_code", "所属区划", FieldType.text),
    "created_at": Field("created_at", "创建时间", FieldType.datetime),
    "updated_at": Field("updated_at", "更新时间", FieldType.datetime),
}


def field_of(policy: LedgerPolicy, code: str) -> Field | None:
    """The catalogue field (or base field) `code` names on the policy's ledger; None if unknown."""
    return BASE_FIELDS.get(code) or policy.ledger.field(code)


def filter_field(policy: LedgerPolicy, code: str, op: str, path: str) -> tuple[Field, ColumnElement[Any]]:
    """(field, raw column) to filter on with `op`: a 403 unless the policy allows it (check_filter)."""
    col = policy.check_filter(code, op, path)  # refuses unknown names like hidden ones
    f = field_of(policy, code)
    assert f is not None
    return f, col


def sort_field(policy: LedgerPolicy, code: str, path: str) -> tuple[Field, ColumnElement[Any]]:
    """(field, raw column) to sort, group or aggregate on: read level or better (check_sort)."""
    col = policy.check_sort(code, path)
    f = field_of(policy, code)
    assert f is not None
    return f, col
