"""Typed filter and order inputs -> SQL, in the shared query vocabulary of app/query (as REST lists).

Every field named goes through the access policy first (check_filter / check_sort): hidden fields can
not be filtered, sorted or grouped on, masked fields only looked up exactly where the grant allows.
Values are coerced by the catalogue like REST query values, so both APIs accept the same inputs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, false, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from app.access.policy import LedgerPolicy
from app.catalog.model import Field
from app.graphql.cache import Var
from app.graphql.spec import LedgerNames
from app.query import fields, keyset, operators
from app.query.keyset import SortKey

# Compiler.bind: (argument value, converter -> values, SQL types) -> values or bind parameters.
Binder = Callable[[Any, Callable[[Any], tuple], list | None], tuple]


def _plain(raw: Any, convert: Callable[[Any], tuple], types: list | None = None) -> tuple:
    return convert(raw)


_OP = {
    "eq": "eq",
    "ne": "ne",
    "in": "in",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
    "prefix": "prefix",
    "isNull": "is_null",
}


def enum_value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def where(
    policy: LedgerPolicy,
    t: FromClause,
    names: LedgerNames,
    raw: dict | None,
    path: str,
    bind: Binder = _plain,
) -> list[ColumnElement]:
    """Clauses for a filter input (already validated against its GraphQL type)."""
    if not raw:
        return []
    out: list[ColumnElement] = []
    for name, value in raw.items():
        if value is None:
            continue
        p = f"{path}.{name}"
        if name in ("and", "or"):
            parts = [
                and_(true(), *where(policy, t, names, sub, f"{p}[{i}]", bind)) for i, sub in enumerate(value)
            ]
            if parts:
                out.append(and_(*parts) if name == "and" else or_(*parts))
            elif name == "or":
                out.append(false())  # no alternative holds
        elif name == "not":
            out.append(not_(and_(true(), *where(policy, t, names, value, p, bind))))
        else:
            out += _field_ops(policy, t, names.filterable[name].code, value, p, bind)
    return out


def _field_ops(
    policy: LedgerPolicy, t: FromClause, code: str, ops: dict, path: str, bind: Binder = _plain
) -> list[ColumnElement]:
    out: list[ColumnElement] = []
    for gql_op, arg in ops.items():
        if arg is None:
            continue
        op = _OP[gql_op]
        # raises for hidden, and for masked unless lookup is granted
        f, _ = fields.filter_field(policy, code, op, path)
        col = t.c[code]
        if op in operators.SCALAR_OPS:  # one operand: a bind parameter where it is a variable's
            # Kept by the statement cache to convert the variable's next value: f and op bound now.
            def convert(v: Any, f: Field = f, op: str = op) -> tuple[Any]:
                return (operators.operand(f, op, v, path),)

            (value,) = bind(arg, convert, [col.type])
        else:
            value = operators.operand(f, op, arg, path)
        out.append(operators.apply(col, op, value))
    return out


def sort_keys(policy: LedgerPolicy, t: FromClause, order: list[dict] | None, path: str) -> list[SortKey]:
    wanted = [
        (enum_value(item["field"]), enum_value(item.get("direction")) == "desc", f"{path}[{i}].field")
        for i, item in enumerate(order or [])
    ]
    return keyset.sort_keys(policy, wanted, t)


def after(keys: list[SortKey], cursor: Any, path: str, bind: Binder = _plain) -> ColumnElement:
    """Rows strictly after the cursor: REST's keyset rule and cursor format (app/query/keyset.py).

    A cursor in a parametric variable (cache.Var) gives the same clause with its values bound; the
    clause's shape depends only on which values are null and which are numbers (cache.shape_of)."""
    if not isinstance(cursor, Var):
        return keyset.keyset_clause(keys, cursor, f"{path}.after")
    return keyset.keyset_clause(
        keys, cursor.value, f"{path}.after", lambda convert, types: bind(cursor, convert, types)
    )
