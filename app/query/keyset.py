"""Keyset order and cursors: sort keys through the policy, ORDER BY, the cursor format, "rows after".

A cursor is base64url (no padding) of the JSON array of the last row's sort values; REST writes it in
Python (`encode_cursor`), GraphQL in SQL (`cursor_sql`), both read it with `decode_cursor`, which checks
every value against its key's type so a forged cursor is a 400 query.cursor_invalid, never a 500.
Order is always NULLS LAST with `id` as the final tie-break, which keeps "rows after" total.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Text, and_, cast, false, func, literal_column, or_, true, tuple_
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from app.access.policy import LedgerPolicy
from app.catalog.model import Field, FieldType
from app.errors import FieldError, Problem
from app.query.fields import BASE_FIELDS, sort_field
from app.query.problems import query_problem

MAX_CURSOR = 4096  # characters; a real cursor is a few sort values
_BIGINT = 2**63


@dataclass(frozen=True)
class SortKey:
    code: str
    column: ColumnElement[Any]
    desc: bool
    field: Field


def id_key(table: FromClause) -> SortKey:
    return SortKey("id", table.c.id, False, BASE_FIELDS["id"])


def sort_keys(
    policy: LedgerPolicy, wanted: list[tuple[str, bool, str]], table: FromClause | None = None
) -> list[SortKey]:
    """Keys for (field code, descending, path) in order, each allowed by the policy (check_sort), then
    `id` unless named. Columns are `table`'s (an alias of the policy's table) if given."""
    t = table if table is not None else policy.table
    keys: list[SortKey] = []
    for code, desc, path in wanted:
        f, _ = sort_field(policy, code, path)
        if any(k.code == code for k in keys):
            raise query_problem(path, "order.duplicate", "排序字段重复")
        keys.append(SortKey(code, t.c[code], desc, f))
    if not any(k.code == "id" for k in keys):
        keys.append(id_key(t))
    return keys


def rebind(keys: list[SortKey], t: FromClause) -> list[SortKey]:
    """The same keys over another FROM that has the columns under the same names (a page subquery)."""
    return [replace(k, column=t.c[k.code]) for k in keys]


def order_by(keys: list[SortKey]) -> list[ColumnElement[Any]]:
    # NULLS LAST in both directions keeps the keyset predicate below simple and total.
    return [(k.column.desc() if k.desc else k.column.asc()).nulls_last() for k in keys]


# ---- the cursor ---------------------------------------------------------------------------------


def _json_default(o: object) -> str:
    if isinstance(o, (date, datetime)):
        return o.isoformat()
    return str(o)  # Decimal


def encode_cursor(values: list[Any]) -> str:
    """The cursor after a row whose sort values (in key order) are `values`."""
    return base64.urlsafe_b64encode(orjson.dumps(values, default=_json_default)).decode().rstrip("=")


def cursor_sql(keys: list[SortKey]) -> ColumnElement[Any]:
    """`encode_cursor` in SQL, over the keys' columns: the same text for the same row."""
    values = [cast(k.column, Text) if k.field.type == FieldType.decimal else k.column for k in keys]
    raw = func.encode(
        func.convert_to(cast(func.json_build_array(*values), Text), literal_column("'UTF8'")),
        literal_column("'base64'"),
    )
    return func.rtrim(
        func.translate(raw, literal_column("E'+/\\n'"), literal_column("'-_'")), literal_column("'='")
    )


def cursor_problem(path: str) -> Problem:
    return Problem(
        400,
        "query.cursor_invalid",
        "分页游标无效",
        errors=[FieldError(path, "cursor.invalid", "分页游标无效，请从第一页重新开始")],
    )


def decode_cursor(keys: list[SortKey], cursor: str, path: str) -> list[Any]:
    """The sort values a cursor carries (JSON scalars), or a 400 problem naming the cursor's path.

    A cursor comes back from the caller, so every value is checked against its key's type here:
    anything PostgreSQL would refuse when comparing or casting it (text where a date is expected, a
    number past bigint, a decimal past its column, a NUL) is the caller's error, not a 500."""
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError
        return [_cursor_value(k.field, v) for k, v in zip(keys, values, strict=True)]
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        raise cursor_problem(path) from None


def _cursor_value(f: Field, v: Any) -> Any:
    """v as encode_cursor would have written it for a field of f's type (ValueError if not)."""
    if v is None:
        return None
    match f.type:
        case FieldType.integer | FieldType.reference:
            if isinstance(v, bool) or not isinstance(v, int) or not -_BIGINT <= v < _BIGINT:
                raise TypeError
        case FieldType.boolean:
            if not isinstance(v, bool):
                raise TypeError
        case FieldType.decimal:
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise TypeError
            d = Decimal(str(v))
            if not d.is_finite() or abs(d) >= Decimal(10) ** (f.precision - f.scale):
                raise ValueError
        case FieldType.date:
            if not isinstance(v, str):
                raise TypeError
            date.fromisoformat(v)
        case FieldType.datetime:
            if not isinstance(v, str):
                raise TypeError
            dt = datetime.fromisoformat(v)
            if dt.tzinfo is not None:  # PostgreSQL refuses offsets past 15:59 that Python accepts
                v = dt.astimezone(UTC).isoformat()
        case _:  # text, code
            if not isinstance(v, str) or "\x00" in v:
                raise TypeError
    return v


# ---- rows after the cursor ----------------------------------------------------------------------


def is_row_form(keys: list[SortKey], raw: list[Any]) -> bool:
    """All keys NOT NULL, no null value, one direction: `(a, b) > (x, y)`, an index range."""
    return (
        not any(getattr(k.column, "nullable", True) for k in keys)
        and None not in raw
        and len({k.desc for k in keys}) == 1
    )


def keyset_after(keys: list[SortKey], raw: list[Any], bound: list[Any]) -> ColumnElement[Any]:
    """Rows strictly after (raw values, as SQL expressions in `bound`) in (keys..., NULLS LAST) order.

    Not the row form: the expanded OR form, where NOT NULL columns get no `OR col IS NULL` branch
    (that branch would make PostgreSQL filter the whole index up to the cursor).
    """
    if is_row_form(keys, raw):
        row, at = tuple_(*(k.column for k in keys)), tuple_(*bound)
        return row < at if keys[0].desc else row > at
    alternatives = []
    equal_so_far: list[ColumnElement[Any]] = []
    for k, value in zip(keys, bound, strict=True):
        after: ColumnElement[bool]
        if value is None:
            after = false()  # nothing sorts after NULL (NULLS LAST)
            equal = k.column.is_(None)
        else:
            after = k.column < value if k.desc else k.column > value
            if getattr(k.column, "nullable", True):
                after = or_(after, k.column.is_(None))
            equal = k.column == value
        alternatives.append(and_(*equal_so_far, after) if equal_so_far else after)
        equal_so_far.append(equal)
    return or_(*alternatives) if alternatives else true()


# bind(convert, types) -> values: how a cursor's values enter the statement (see keyset_clause).
CursorBind = Callable[[Callable[[str], tuple[Any, ...]], list[Any]], tuple[Any, ...]]


def keyset_clause(
    keys: list[SortKey], cursor: str, path: str = "query.cursor", bind: CursorBind | None = None
) -> ColumnElement[Any]:
    """Rows strictly after `cursor` (400 query.cursor_invalid if it is not one of these keys').

    Numbers compare as they are; text (dates, codes, decimals as text) is cast to the column's type.
    `bind` lets GraphQL put the values in as bind parameters of a statement it runs again with a
    variable's next cursor: it gets the decoding (str -> values) and each value's SQL type (None: typed
    by its value, as a number in the row form is). The clause's shape depends only on which values are
    null and which are numbers."""

    def decode(c: str) -> tuple[Any, ...]:
        values = decode_cursor(keys, c, path)
        return tuple(v if v is None or isinstance(v, (int, float)) else str(v) for v in values)

    raw = decode(cursor)
    numeric = [isinstance(v, (int, float)) for v in raw]
    values = raw
    if bind is not None:
        row_form = is_row_form(keys, list(raw))
        values = bind(
            decode, [None if (n and row_form) else k.column.type for k, n in zip(keys, numeric, strict=True)]
        )
    bound = [
        v if v is None or n else cast(v, k.column.type) for k, v, n in zip(keys, values, numeric, strict=True)
    ]
    return keyset_after(keys, list(raw), bound)
