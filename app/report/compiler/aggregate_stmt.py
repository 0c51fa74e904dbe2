"""Aggregate templates: one row per village, township or code value, aggregates over the area's records."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    Text,
    and_,
    cast,
    column,
    distinct,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
    values,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import FromClause

from app.catalog.model import FieldType
from app.errors import FieldError
from app.org.models import Region
from app.query.paths import PathRef
from app.report.compiler.builder import Builder
from app.report.compiler.columns import NUMERIC, OutColumn, jsonb
from app.report.compiler.derived import derived
from app.report.compiler.gaps import gap
from app.report.dsl import AggregateColumn, FieldColumn, GapColumn, TemplateSpec


def _row_key(b: Builder, where: str) -> ColumnElement:
    """The group key of a row of the template's ledger in b's FROM: its village, township or code value."""
    rows, t0 = b.spec.rows, b.base
    assert rows is not None  # an aggregate template has its rows (dsl validation)
    if rows.by == "code":
        got = b.raw(rows.path, where) if rows.path else None
        return got[0] if got and got[1].type == FieldType.code else null()
    n = 12 if rows.by == "village" else 9
    key = func.left(t0.c.region_code, literal_column(str(n)))  # a constant: GROUP BY must match it
    return func.concat(key, literal_column("'000'")) if n == 9 else key


def aggregate_statement(b: Builder, spec: TemplateSpec, base_where: list) -> tuple[Select, list[OutColumn]]:
    rows = spec.rows
    assert rows is not None  # an aggregate template has its rows (dsl validation)
    src: FromClause
    src_key: ColumnElement[Any]
    src_label: ColumnElement[Any]
    src_region: ColumnElement[Any]
    src_where: ColumnElement[bool]
    if rows.by == "code":
        got = b.raw(rows.path, "body.rows.path") if rows.path else None
        if rows.path is None:
            b.errors.append(
                FieldError("body.rows.path", "template.rows_path", "按代码分行需要代码表字段路径")
            )
        elif got is not None and got[1].type != FieldType.code:
            b.errors.append(
                FieldError("body.rows.path", "template.rows_path", "按代码分行的字段须为代码表类型")
            )
            got = None
        key = got[0] if got else null()
        cl = b.catalog.codelists.get(got[1].codelist) if got and got[1].codelist else None
        items = list(cl.values.items()) if cl else [("", "")]
        b.code_rows = len(items)
        src = values(column("key", String), column("label", String), name="v").data(items)
        src_key, src_label, src_region, src_where = src.c.key, src.c.label, null().cast(Text), true()
    else:
        key = _row_key(b, "body.rows.path")
        src = Region.__table__.alias("r")
        src_key, src_label, src_region = src.c.code, src.c.name, src.c.code
        src_where = and_(src.c.code.like(b.area + "%"), src.c.level == (5 if rows.by == "village" else 4))
    outs: dict[str, OutColumn] = {}
    inner_cols: list[ColumnElement] = []
    kinds: dict[str, str] = {}
    once = _Once(b)
    for i, c in enumerate(spec.columns):
        where = f"body.columns.{i}"
        if isinstance(c, AggregateColumn):
            ref = b.ref(c.path, f"{where}.path", to_one=False) if c.path else None
            if ref is not None and not ref.direct:
                # Through a shared or one-to-many hop: over distinct far records, in a query of its own.
                typ = once.add(c, ref, where)
                outs[c.code] = OutColumn(c.code, c.label, "aggregate", typ, path=c.path, fn=c.fn)
                kinds.update({code: _kind(code, c.fn) for code in _codes(c)})
                continue
            n_err = len(b.errors) + len(b.denied)
            col = _direct(b, c, ref, where)
            conds = b.conditions(c.filter, f"{where}.filter")
            ok = n_err == len(b.errors) + len(b.denied)
            aggs, typ = _aggs(b, c, col, ok, where)
            outs[c.code] = OutColumn(c.code, c.label, "aggregate", typ, path=c.path, fn=c.fn)
            for code, expr in aggs.items():
                inner_cols.append(_filtered(expr, conds, code, col, c.fn).label(code))
                kinds[code] = _kind(code, c.fn)
        elif isinstance(c, GapColumn):
            out, _ = gap(b, c, where)
            outs[c.code] = out
        elif isinstance(c, FieldColumn):
            b.errors.append(
                FieldError(
                    f"{where}.kind",
                    "template.field_in_aggregate",
                    "统计式报表的列应为统计、公式、比例或空缺列",
                )
            )
            outs[c.code] = OutColumn(c.code, c.label or c.code, "field", "text")
        else:
            outs[c.code] = OutColumn(c.code, c.label, c.kind, "decimal")
    inner = (
        select(key.label("k"), *inner_cols)
        .select_from(b.from_)
        .where(*base_where)
        .group_by(key)
        .subquery("a")
    )
    joined = src.outerjoin(inner, inner.c.k == src_key)
    cols = {c: inner.c[c] for c in inner.c.keys() if c != "k"}
    for sub in once.subqueries():
        joined = joined.outerjoin(sub, sub.c.k == src_key)
        cols.update({c: sub.c[c] for c in sub.c.keys() if c != "k"})
    env: dict[str, ColumnElement] = {}
    for code, fn in kinds.items():
        col = cols[code]
        env[code] = func.coalesce(col, 0) if fn in ("count", "count_distinct", "sum") else col
    derived(b, spec, outs, env)
    data = [(c.code, env[c.code]) for c in spec.columns if c.code in env and outs[c.code].kind != "gap"]
    data += [(k, v) for k, v in env.items() if k.startswith("__")]
    stmt = (
        select(
            cast(src_key, Text).label("row_key"),
            func.row_number().over(order_by=src_key).label("row_no"),
            cast(src_label, Text).label("label"),
            null().cast(Integer).label("record_id"),
            src_region.label("region_code"),
            jsonb(data).label("data"),
            cast(literal("{}"), JSONB).label("prov"),
            cast(literal("{}"), JSONB).label("links"),
            cast(literal("{}"), JSONB).label("prefill"),
        )
        .select_from(joined)
        .where(src_where)
    )
    return stmt, [outs[c.code] for c in spec.columns]


def _kind(code: str, fn: str) -> str:
    """How a data key aggregates: carried sums and counts are sums and counts (0 when empty)."""
    return {"__s_": "sum", "__n_": "count", "__d_": "values"}.get(code[:4], fn)


def _codes(c: AggregateColumn) -> list[str]:
    """The data keys a column writes: its own, and what merged rows and district totals need from it —
    the sum and count of a mean, the distinct values of a distinct count (`__d_`: a union counts them)."""
    if c.fn == "avg" and c.path:
        return [c.code, f"__s_{c.code}", f"__n_{c.code}"]
    if c.fn == "count_distinct":
        return [c.code, f"__d_{c.code}"]
    return [c.code]


def _direct(b: Builder, c: AggregateColumn, ref: PathRef | None, where: str) -> ColumnElement | None:
    """The column of a path that stays one-to-one with the row (joined onto the template's FROM)."""
    if ref is None:
        if c.path is None and c.fn != "count":
            b.errors.append(FieldError(f"{where}.path", "template.aggregate_path", "该统计需要字段路径"))
        return None
    alias, _ = b.tables.value_alias(ref)
    assert ref.field is not None  # a value path ends at a field
    col = alias.c[ref.field.code]
    return col if b.check(ref, f"{where}.path") else cast(null(), col.type)


def _aggs(
    b: Builder, c: AggregateColumn, col: ColumnElement | None, ok: bool, where: str
) -> tuple[dict[str, ColumnElement], str]:
    """{data key: aggregate expression} of a column over a value column (None: count rows), and its type."""
    if col is None:
        return {c.code: func.count() if c.path is None else null()}, "integer"
    typ = _type(b, c, where)
    return _exprs(c, col, ok), typ


def _type(b: Builder, c: AggregateColumn, where: str) -> str:
    """The column's type; an error for an aggregate its field's type does not allow."""
    ref = b.ref(c.path, f"{where}.path", to_one=False) if c.path else None
    assert ref is not None and ref.field is not None  # only called for a column over a value (_aggs)
    ftype = ref.field.type.value
    if c.fn in ("sum", "avg") and ftype not in NUMERIC:
        b.errors.append(FieldError(f"{where}.path", "template.aggregate_type", "求和、平均只用于数值字段"))
    if c.fn in ("min", "max") and ftype not in (*NUMERIC, "date", "datetime"):
        b.errors.append(
            FieldError(f"{where}.path", "template.aggregate_type", "最小、最大只用于数值或日期字段")
        )
    return {"count": "integer", "count_distinct": "integer", "avg": "decimal"}.get(c.fn, ftype)


def _exprs(c: AggregateColumn, col: ColumnElement, carry: bool = True) -> dict[str, ColumnElement]:
    match c.fn:
        case "count":
            return {c.code: func.count(col)}
        case "count_distinct":
            return {
                c.code: func.count(distinct(col)),
                f"__d_{c.code}": func.jsonb_agg(distinct(col), type_=JSONB),
            }
        case "sum":
            return {c.code: func.sum(col)}
        case "avg":
            out: dict[str, ColumnElement[Any]] = {c.code: func.avg(col)}
            if (
                carry
            ):  # sum and count ride along so merged rows and district totals recompute the mean exactly
                out |= {f"__s_{c.code}": func.sum(col), f"__n_{c.code}": func.count(col)}
            return out
        case "min":
            return {c.code: func.min(col)}
        case _:
            return {c.code: func.max(col)}


def _filtered(
    expr: ColumnElement, conds: list[ColumnElement], code: str, col: ColumnElement | None, fn: str
) -> ColumnElement:
    if code.startswith("__d_") and col is not None:  # the distinct values present (jsonb_agg keeps NULLs)
        conds = [*conds, col.is_not(None)]
    if conds and isinstance(expr, FunctionElement):  # not the NULL of a column in error
        expr = expr.filter(and_(*conds))
    if fn == "avg" and not code.startswith("__"):
        expr = func.round(expr, 2)  # after FILTER: it belongs to the aggregate, not to round()
    return expr


_DIGITS_AS_LETTERS = str.maketrans("0123456789", "abcdefghij")


def _rows(b: Builder):
    """The ids of the template's rows (scope, area, filter), computed once and shared by every counted-once
    query of the statement (a MATERIALIZED CTE: planned apart, never pulled up into the queries joining it).

    A query counting far records once repeated the template's filter next to its own hops. With an
    `exists` over a one-to-many link in that filter, PostgreSQL 15 and 18 alike estimated one row
    where there were thousands and checked the filter once per far record (every member of every
    household of the township: 125,572 semi-join probes for 868 households); planned apart, the filter
    picks the households first (as the main query does) and the hops start from them.
    """
    rb = b.fork()
    # One CTE per area: its name is unique in a dispatch's UNION ALL of townships (CTE names are global).
    # Digits are spelt as letters so the statement text never carries a region code (template values
    # are always bound, and a test checks that no value appears in the SQL text).
    name = "rows_" + (re.sub(r"[^A-Za-z]", "_", b.area.translate(_DIGITS_AS_LETTERS)) or "all")
    return (
        select(rb.base.c.id)
        .select_from(rb.from_)
        .where(*rb.base_where())
        .cte(name)
        .prefix_with("MATERIALIZED")
    )


class _Once:
    """Aggregate columns whose path passes a shared or one-to-many hop (persons → their house, houses →
    residents): each far record (or link) counts once per row, however many records of the row reach it.
    Per (hops, filter) one query of its own over fresh aliases: the distinct (row key, far id, values) of
    the records passing the template's and the column's filters, aggregated per row key. Columns over the
    same hops and filter share it (house count, area sum and mean: one pass)."""

    def __init__(self, b: Builder):
        self.b = b
        self.groups: dict[tuple, dict] = {}
        self.rows: Any = None  # the template's rows, one CTE for every group (see _rows)

    def add(self, c: AggregateColumn, ref: PathRef, where: str) -> str:
        b = self.b
        hops = tuple(h.seg for h in ref.hops) + (("@",) if ref.attribute else ())
        gkey = (hops, json.dumps([x.model_dump() for x in c.filter], sort_keys=True))
        g = self.groups.get(gkey)
        if g is None:
            fb = b.fork()
            conds = fb.conditions(c.filter, f"{where}.filter")
            b.errors += fb.errors
            b.denied += fb.denied
            b.fields_used |= fb.fields_used
            key = _row_key(fb, "body.rows.path")
            if b.spec.filter:
                # The template's rows come from a subquery planned on its own (see _rows): joined here by id.
                if self.rows is None:
                    self.rows = _rows(b)
                rows = self.rows
                fb.tables.clause = rows.join(fb.from_, rows.c.id == fb.base.c.id)
                fwhere = conds
            else:
                fwhere = [*fb.base_where(), *conds]
            g = self.groups[gkey] = {"b": fb, "where": fwhere, "key": key, "values": {}, "columns": []}
        alias, far_id = g["b"].tables.value_alias(ref, inner=True)
        g["far"] = far_id
        assert ref.field is not None  # a value path ends at a field
        value = alias.c[ref.field.code]
        if not b.check(ref, f"{where}.path"):
            value = cast(
                null(), value.type
            )  # a denied field: a typed NULL, so a narrowed live read still plans
        label = f"v{len(g['values'])}"
        g["values"][label] = value
        g["columns"].append((c, label))
        return _type(b, c, where)

    def subqueries(self) -> list:
        out = []
        for i, g in enumerate(self.groups.values()):
            rows = (
                select(
                    g["key"].label("k"), g["far"].label("f"), *[v.label(k) for k, v in g["values"].items()]
                )
                .select_from(g["b"].from_)
                .where(*g["where"])
                .distinct()
                .subquery(f"o{i}r")
            )
            cols = [
                _filtered(expr, [], code, rows.c[label], c.fn).label(code)
                for c, label in g["columns"]
                for code, expr in _exprs(c, rows.c[label]).items()
            ]
            out.append(select(rows.c.k, *cols).group_by(rows.c.k).subquery(f"o{i}"))
        return out
