"""List requests: PostgREST-style filters (?field=op.value), order (?order=f.desc) and keyset cursors.

Every field named here goes through the access policy first: hidden fields can't be filtered or
sorted on, masked fields only looked up exactly where the grant allows it.
"""

from __future__ import annotations

import base64
import operator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
from sqlalchemy import Column, and_, cast, false, or_, true, tuple_
from sqlalchemy.sql.elements import ColumnElement

from app.access.policy import LedgerPolicy
from app.catalog.coerce import coerce
from app.catalog.loader import get_catalog
from app.catalog.model import Field, FieldType
from app.catalog.validators import ValueIssue
from app.errors import FieldError, Problem

_COMPARE = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge,
            "lt": operator.lt, "lte": operator.le}
OPS = {*_COMPARE, "in", "prefix", "is_null"}
RESERVED_PARAMS = {"order", "limit", "cursor", "fields"}
MAX_IN = 500


def query_problem(path: str, code: str, message: str) -> Problem:
    return Problem(422, "query.invalid", "查询参数有误", errors=[FieldError(path, code, message)])


BASE_FIELDS = {
    "id": Field("id", "记录编号", FieldType.integer),
    "region_code": Field("region_code", "所属区划", FieldType.text),
    "created_at": Field("created_at", "创建时间", FieldType.datetime),
    "updated_at": Field("updated_at", "更新时间", FieldType.datetime),
}


def field_of(policy: LedgerPolicy, code: str) -> Field | None:
    return BASE_FIELDS.get(code) or policy.ledger.field(code)


def parse_value(f: Field, raw: str, path: str):
    if f.code == "region_code":
        if not raw.isdigit() or len(raw) > 15:
            raise query_problem(path, "region_code.format", "区划代码应为数字")
        return raw
    try:
        return coerce(f, raw, get_catalog()).value
    except ValueIssue as issue:
        raise query_problem(path, issue.code, issue.message) from None


def parse_filters(policy: LedgerPolicy, params: list[tuple[str, str]]) -> list[ColumnElement]:
    clauses: list[ColumnElement] = []
    for name, raw in params:
        if name in RESERVED_PARAMS:
            continue
        path = f"query.{name}"
        op, sep, arg = raw.partition(".")
        if not sep or op not in OPS:
            raise query_problem(path, "filter.op", "筛选条件应写作 运算符.值，如 eq.1、in.1,2、gte.2024-01-01、is_null.true")
        f = field_of(policy, name)
        if f is None:
            # Unknown and hidden answer alike, so hidden field names are not confirmed.
            policy.check_filter(name, op, path)
            raise AssertionError("unreachable")
        col: Column = policy.check_filter(name, op, path)
        if op == "is_null":
            if arg not in ("true", "false"):
                raise query_problem(path, "filter.is_null", "is_null 的值应为 true 或 false")
            clauses.append(col.is_(None) if arg == "true" else col.is_not(None))
        elif op == "in":
            items = [a for a in arg.split(",") if a != ""]
            if not items or len(items) > MAX_IN:
                raise query_problem(path, "filter.in", f"in 需要 1 到 {MAX_IN} 个值")
            clauses.append(col.in_([parse_value(f, a, path) for a in items]))
        elif op == "prefix":
            if f.type not in (FieldType.text, FieldType.code):
                raise query_problem(path, "filter.prefix", "prefix 只适用于文本和代码字段")
            escaped = arg.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(col.like(escaped + "%", escape="\\"))
        else:
            clauses.append(_COMPARE[op](col, parse_value(f, arg, path)))
    return clauses


@dataclass(frozen=True)
class SortKey:
    code: str
    column: Column
    desc: bool
    field: Field


def parse_order(policy: LedgerPolicy, raw: str | None) -> list[SortKey]:
    keys: list[SortKey] = []
    seen: set[str] = set()
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        code, _, direction = part.partition(".")
        if direction not in ("", "asc", "desc"):
            raise query_problem("query.order", "order.direction", "排序方向应为 asc 或 desc")
        f = field_of(policy, code)
        col = policy.check_sort(code, "query.order")
        if code in seen or f is None:
            raise query_problem("query.order", "order.duplicate", "排序字段重复")
        seen.add(code)
        keys.append(SortKey(code, col, direction == "desc", f))
    if not keys:
        # Default: by area, then id — what a clerk expects, and one (region_code, id) index range scan.
        keys.append(SortKey("region_code", policy.table.c.region_code, False, BASE_FIELDS["region_code"]))
    if "id" not in seen:
        keys.append(SortKey("id", policy.table.c.id, False, BASE_FIELDS["id"]))
    return keys


def order_by(keys: list[SortKey]) -> list[ColumnElement]:
    # NULLS LAST in both directions keeps the keyset predicate below simple and total.
    return [(k.column.desc() if k.desc else k.column.asc()).nulls_last() for k in keys]


def _json_default(o):
    if isinstance(o, (date, datetime)):
        return o.isoformat()
    return str(o)  # Decimal


def encode_cursor(keys: list[SortKey], row) -> str:
    values = [getattr(row, "_sort_" + k.code) for k in keys]
    return base64.urlsafe_b64encode(orjson.dumps(values, default=_json_default)).decode().rstrip("=")


MAX_CURSOR = 4096  # characters; a real cursor is a few sort values


def cursor_problem(path: str) -> Problem:
    return Problem(400, "query.cursor_invalid", "分页游标无效",
                   errors=[FieldError(path, "cursor.invalid", "分页游标无效，请从第一页重新开始")])


def decode_cursor(keys: list[SortKey], cursor: str, path: str) -> list:
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
        return [_cursor_value(k.field, v) for k, v in zip(keys, values)]
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        raise cursor_problem(path) from None


_BIGINT = 2**63


def _cursor_value(f: Field, v):
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


def is_row_form(keys: list[SortKey], raw: list) -> bool:
    """All keys NOT NULL, no null value, one direction: `(a, b) > (x, y)`, an index range."""
    return (not any(getattr(k.column, "nullable", True) for k in keys) and None not in raw
            and len({k.desc for k in keys}) == 1)


def keyset_after(keys: list[SortKey], raw: list, bound: list) -> ColumnElement:
    """Rows strictly after (raw values, as SQL expressions in `bound`) in (keys..., NULLS LAST) order.

    Not the row form: the expanded OR form, where NOT NULL columns get no `OR col IS NULL` branch
    (that branch would make PostgreSQL filter the whole index up to the cursor).
    """
    if is_row_form(keys, raw):
        row, at = tuple_(*(k.column for k in keys)), tuple_(*bound)
        return row < at if keys[0].desc else row > at
    alternatives = []
    equal_so_far: list[ColumnElement] = []
    for k, value in zip(keys, bound):
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


def keyset_clause(keys: list[SortKey], cursor: str, path: str = "query.cursor") -> ColumnElement:
    raw = decode_cursor(keys, cursor, path)
    # Numbers compare as they are; text (dates, codes, decimals as text) is cast to the column's type.
    bound = [v if v is None or isinstance(v, (int, float)) else cast(str(v), k.column.type)
             for k, v in zip(keys, raw)]
    return keyset_after(keys, raw, bound)
