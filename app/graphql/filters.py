"""Typed filter and order inputs -> SQL, with the REST list semantics (app/ledger/listing.py).

Every field named goes through the access policy first (check_filter / check_sort): hidden fields can
not be filtered, sorted or grouped on, masked fields only looked up exactly where the grant allows.
Values are coerced by the catalogue like REST query values, so both APIs accept the same inputs.
"""

from __future__ import annotations

import enum
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, false, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from app.access.policy import LedgerPolicy
from app.catalog.model import FieldType
from app.graphql.spec import LedgerNames
from app.ledger import listing
from app.ledger.listing import SortKey

_OP = {"eq": "eq", "ne": "ne", "in": "in", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte", "prefix": "prefix",
       "isNull": "is_null"}


def enum_value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def where(policy: LedgerPolicy, t: FromClause, names: LedgerNames, raw: dict | None, path: str) -> list[ColumnElement]:
    """Clauses for a filter input (already validated against its GraphQL type)."""
    if not raw:
        return []
    out: list[ColumnElement] = []
    for name, value in raw.items():
        if value is None:
            continue
        p = f"{path}.{name}"
        if name in ("and", "or"):
            parts = [and_(true(), *where(policy, t, names, sub, f"{p}[{i}]")) for i, sub in enumerate(value)]
            if parts:
                out.append(and_(*parts) if name == "and" else or_(*parts))
            elif name == "or":
                out.append(false())  # no alternative holds
        elif name == "not":
            out.append(not_(and_(true(), *where(policy, t, names, value, p))))
        else:
            out += _field_ops(policy, t, names.filterable[name].code, value, p)
    return out


def _field_ops(policy: LedgerPolicy, t: FromClause, code: str, ops: dict, path: str) -> list[ColumnElement]:
    f = listing.field_of(policy, code)
    out: list[ColumnElement] = []
    for gql_op, arg in ops.items():
        if arg is None:
            continue
        op = _OP[gql_op]
        policy.check_filter(code, op, path)  # raises for hidden, and for masked unless lookup is granted
        assert f is not None  # check_filter refuses unknown names
        col = t.c[code]
        if op == "is_null":
            out.append(col.is_(None) if arg else col.is_not(None))
        elif op == "in":
            if not arg or len(arg) > listing.MAX_IN:
                raise listing.query_problem(path, "filter.in", f"in 需要 1 到 {listing.MAX_IN} 个值")
            out.append(col.in_([listing.parse_value(f, a, path) for a in arg]))
        elif op == "prefix":
            if f.type not in (FieldType.text, FieldType.code):
                raise listing.query_problem(path, "filter.prefix", "prefix 只适用于文本和代码字段")
            escaped = arg.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            out.append(col.like(escaped + "%", escape="\\"))
        else:
            value = listing.parse_value(f, arg, path)
            out.append({"eq": col == value, "ne": col != value, "gt": col > value, "gte": col >= value,
                        "lt": col < value, "lte": col <= value}[op])
    return out


def sort_keys(policy: LedgerPolicy, t: FromClause, order: list[dict] | None, path: str) -> list[SortKey]:
    keys: list[SortKey] = []
    for i, item in enumerate(order or []):
        code = enum_value(item["field"])
        p = f"{path}[{i}].field"
        policy.check_sort(code, p)
        if any(k.code == code for k in keys):
            raise listing.query_problem(p, "order.duplicate", "排序字段重复")
        f = listing.field_of(policy, code)
        assert f is not None
        keys.append(SortKey(code, t.c[code], enum_value(item.get("direction")) == "desc", f))
    if not any(k.code == "id" for k in keys):
        keys.append(SortKey("id", t.c.id, False, listing.BASE_FIELDS["id"]))
    return keys


def rebind(keys: list[SortKey], t: FromClause) -> list[SortKey]:
    """The same keys over another FROM that has the columns under the same names (a page subquery)."""
    return [replace(k, column=t.c[k.code]) for k in keys]


def after(keys: list[SortKey], cursor: str, path: str) -> ColumnElement:
    """Rows strictly after the cursor: REST's keyset rule and cursor format, shared."""
    return listing.keyset_clause(keys, cursor, f"{path}.after")
