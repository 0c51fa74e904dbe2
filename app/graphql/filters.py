"""Typed filter and order inputs -> SQL, with the REST list semantics (app/ledger/listing.py).

Every field named goes through the access policy first (check_filter / check_sort): hidden fields can
not be filtered, sorted or grouped on, masked fields only looked up exactly where the grant allows.
Values are coerced by the catalogue like REST query values, so both APIs accept the same inputs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, cast, false, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from app.access.policy import LedgerPolicy
from app.catalog.model import FieldType
from app.graphql.cache import Var
from app.graphql.spec import LedgerNames
from app.ledger import listing
from app.ledger.listing import SortKey

# Compiler.bind: (argument value, converter -> values, SQL types) -> values or bind parameters.
Binder = Callable[[Any, Callable[[Any], tuple], list | None], tuple]


def _plain(raw: Any, convert: Callable[[Any], tuple], types: list | None = None) -> tuple:
    return convert(raw)

_OP = {"eq": "eq", "ne": "ne", "in": "in", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte", "prefix": "prefix",
       "isNull": "is_null"}


def enum_value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def where(policy: LedgerPolicy, t: FromClause, names: LedgerNames, raw: dict | None, path: str,
          bind: Binder = _plain) -> list[ColumnElement]:
    """Clauses for a filter input (already validated against its GraphQL type)."""
    if not raw:
        return []
    out: list[ColumnElement] = []
    for name, value in raw.items():
        if value is None:
            continue
        p = f"{path}.{name}"
        if name in ("and", "or"):
            parts = [and_(true(), *where(policy, t, names, sub, f"{p}[{i}]", bind)) for i, sub in enumerate(value)]
            if parts:
                out.append(and_(*parts) if name == "and" else or_(*parts))
            elif name == "or":
                out.append(false())  # no alternative holds
        elif name == "not":
            out.append(not_(and_(true(), *where(policy, t, names, value, p, bind))))
        else:
            out += _field_ops(policy, t, names.filterable[name].code, value, p, bind)
    return out


def _escape_prefix(arg: str) -> tuple:
    return (arg.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",)


def _field_ops(policy: LedgerPolicy, t: FromClause, code: str, ops: dict, path: str, bind: Binder = _plain
               ) -> list[ColumnElement]:
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
            (pattern,) = bind(arg, _escape_prefix, [col.type])
            out.append(col.like(pattern, escape="\\"))
        else:
            (value,) = bind(arg, lambda v: (listing.parse_value(f, v, path),), [col.type])
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


def after(keys: list[SortKey], cursor: Any, path: str, bind: Binder = _plain) -> ColumnElement:
    """Rows strictly after the cursor: REST's keyset rule and cursor format (app/ledger/listing.py).

    A cursor in a parametric variable (cache.Var) gives the same clause with its values bound; the
    clause's shape depends only on which values are null and which are numbers (cache.shape_of)."""
    if not isinstance(cursor, Var):
        return listing.keyset_clause(keys, cursor, f"{path}.after")

    def decode(c: str) -> tuple:
        values = listing.decode_cursor(keys, c, f"{path}.after")
        return tuple(v if v is None or isinstance(v, (int, float)) else str(v) for v in values)

    raw = decode(cursor.value)
    numeric = [isinstance(v, (int, float)) for v in raw]
    row_form = listing.is_row_form(keys, list(raw))
    # As in keyset_clause: a number in the row form is typed by its value, compared with a column by
    # the column; text is cast to the column's type.
    types = [None if (n and row_form) else k.column.type for k, n in zip(keys, numeric)]
    values = bind(cursor, decode, types)
    bound = [v if v is None or n else cast(v, k.column.type) for k, v, n in zip(keys, values, numeric)]
    return listing.keyset_after(keys, list(raw), bound)
