"""One operator table: op name -> SQL, and the operand each op takes, coerced against the catalogue.

The filter vocabulary of REST (`?age=gte.60`), GraphQL (`{age: {gte: 60}}`) and report templates
(`{"path": "age", "op": "gte", "value": 60}`): eq ne gt gte lt lte in prefix is_null. An operand is
judged like a typed value (app/catalog/coerce.py), so all three accept and refuse the same inputs;
only the error codes differ (`Codes`): REST and GraphQL name the operator (`filter.in`), reports say
`template.value`. LIKE escaping for `prefix` lives here and nowhere else.

Columns come from the reader's policy: `filter_clause` asks `check_filter` itself; `condition` takes a
column its caller got through `check_filter` (a report's joined alias of it).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from app.access.policy import LedgerPolicy
from app.catalog.coerce import coerce
from app.catalog.loader import get_catalog
from app.catalog.model import Catalog, Field, FieldType
from app.catalog.validators import ValueIssue
from app.errors import FieldError
from app.query.fields import filter_field
from app.query.problems import Refused, query_problem, refused

MAX_IN = 500  # values in one `in`

_SQL: dict[str, Callable[[ColumnElement[Any], Any], ColumnElement[Any]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda col, values: col.in_(values),
    "prefix": lambda col, pattern: col.like(pattern, escape="\\"),
    "is_null": lambda col, yes: col.is_(None) if yes else col.is_not(None),
}
OPS = frozenset(_SQL)
# Ops whose operand is one scalar: GraphQL binds these as parameters of a cached statement.
SCALAR_OPS = frozenset(OPS - {"in", "is_null"})


@dataclass(frozen=True)
class Codes:
    """The error codes a caller gives refused operands (messages are the same for every caller)."""

    is_null: str
    in_: str
    prefix: str
    region: str
    value: str  # a list or null where one value is needed, or a value of the wrong JSON type


QUERY = Codes("filter.is_null", "filter.in", "filter.prefix", "region_code.format", "filter.value")
TEMPLATE = Codes(*["template.value"] * 5)


def like_prefix(text: str) -> str:
    """A LIKE pattern matching what starts with `text` (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def value(f: Field, raw: Any, where: str, *, catalog: Catalog | None = None, codes: Codes = QUERY) -> Any:
    """`raw` as the typed value field `f` stores, or Refused naming `where`."""
    if f.code == "region_code":
        if isinstance(raw, str) and raw.isdigit() and len(raw) <= 15:
            return raw
        raise query_problem(where, codes.region, "区划代码应为数字")
    try:
        return coerce(f, raw, catalog or get_catalog()).value
    except ValueIssue as issue:
        raise query_problem(where, issue.code, issue.message) from None
    except (TypeError, ValueError, KeyError):
        raise query_problem(where, codes.value, "取值与字段类型不符") from None


def operand(
    f: Field, op: str, raw: Any, where: str, *, catalog: Catalog | None = None, codes: Codes = QUERY
) -> Any:
    """What `apply(col, op, ·)` takes for `raw`: a bool, a list of values, a LIKE pattern or a value."""
    if op == "is_null":
        if not isinstance(raw, bool):
            raise query_problem(where, codes.is_null, "is_null 的值应为 true 或 false")
        return raw
    if op == "in":
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_IN:
            raise query_problem(where, codes.in_, f"in 需要 1 到 {MAX_IN} 个值")
        out, errors = [], []
        for item in raw:
            try:
                out.append(value(f, item, where, catalog=catalog, codes=codes))
            except Refused as r:
                errors += r.errors
        if errors:
            raise refused(errors)
        return out
    assert op in SCALAR_OPS, op
    if isinstance(raw, list) or raw is None:
        raise query_problem(where, codes.value, "该运算需要一个值")
    if op == "prefix":
        if f.type not in (FieldType.text, FieldType.code):
            raise query_problem(where, codes.prefix, "prefix 只适用于文本和代码字段")
        return like_prefix(str(raw))
    return value(f, raw, where, catalog=catalog, codes=codes)


def apply(col: ColumnElement[Any], op: str, arg: Any) -> ColumnElement[Any]:
    """The SQL for `col <op> arg`, arg as `operand` returned it (or a bind parameter standing for it)."""
    return _SQL[op](col, arg)


def condition(
    col: ColumnElement[Any],
    f: Field,
    op: str,
    raw: Any,
    where: str,
    catalog: Catalog | None = None,
    *,
    codes: Codes = QUERY,
) -> ColumnElement[Any] | list[FieldError]:
    """`col <op> raw`, or the errors naming `where` (for callers that collect errors: reports pass
    codes=TEMPLATE). `col` must come from the reader's policy (check_filter)."""
    try:
        return apply(col, op, operand(f, op, raw, where, catalog=catalog, codes=codes))
    except Refused as r:
        return r.errors


def filter_clause(
    policy: LedgerPolicy, code: str, op: str, raw: Any, path: str, table: FromClause | None = None
) -> ColumnElement[Any]:
    """A filter on field `code` of the policy's ledger (over `table`, an alias of it, if given): a 403
    unless the policy allows `op` on it, a 422 query.invalid for a bad operand."""
    f, col = filter_field(policy, code, op, path)
    if table is not None:
        col = table.c[code]
    return apply(col, op, operand(f, op, raw, path))
