"""List requests: PostgREST-style filters (?field=op.value), order (?order=f.desc) and keyset cursors.

The query-string syntax lives here; what it means (fields, operators, values, order, cursors) is the
shared vocabulary of app/query, which asks the access policy about every field named: hidden fields
can't be filtered or sorted on, masked fields only looked up exactly where the grant allows it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.sql.elements import ColumnElement

from app.access.policy import LedgerPolicy
from app.query import keyset, operators
from app.query.keyset import SortKey
from app.query.problems import query_problem

RESERVED_PARAMS = {"order", "limit", "cursor", "fields"}
_IS_NULL = {"true": True, "false": False}


def parse_filters(policy: LedgerPolicy, params: list[tuple[str, str]]) -> list[ColumnElement[Any]]:
    clauses: list[ColumnElement[Any]] = []
    for name, raw in params:
        if name in RESERVED_PARAMS:
            continue
        path = f"query.{name}"
        op, sep, arg = raw.partition(".")
        if not sep or op not in operators.OPS:
            raise query_problem(
                path, "filter.op", "筛选条件应写作 运算符.值，如 eq.1、in.1,2、gte.2024-01-01、is_null.true"
            )
        value: object = arg
        if op == "is_null":
            value = _IS_NULL.get(arg, arg)
        elif op == "in":
            value = [a for a in arg.split(",") if a != ""]
        clauses.append(operators.filter_clause(policy, name, op, value, path))
    return clauses


def parse_order(policy: LedgerPolicy, raw: str | None) -> list[SortKey]:
    wanted: list[tuple[str, bool, str]] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        code, _, direction = part.partition(".")
        if direction not in ("", "asc", "desc"):
            raise query_problem("query.order", "order.direction", "排序方向应为 asc 或 desc")
        wanted.append((code, direction == "desc", "query.order"))
    # Default: by area, then id — what a clerk expects, and one (region_code, id) index range scan.
    return keyset.sort_keys(policy, wanted or [("region_code", False, "query.order")])


def sort_columns(keys: list[SortKey]) -> list[ColumnElement[Any]]:
    """The sort values selected beside a page's columns, for the next cursor."""
    return [k.column.label("_sort_" + k.code) for k in keys]


def next_cursor(keys: list[SortKey], row: Any) -> str:
    return keyset.encode_cursor([getattr(row, "_sort_" + k.code) for k in keys])
