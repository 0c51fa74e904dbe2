"""Paths, conditions and values of a template, resolved through the owning department's policies.

Paths go through `app.query.paths` (relations, extensions, link attributes; one-to-one hops joined,
one-to-many ones as correlated EXISTS / count pieces). Every value passes its policy: pulled values
`column` (masked in SQL), filtered ones `check_filter`, grouped or aggregated ones `check_sort`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import cast, distinct, exists, func, literal, null, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from app.access.levels import Level
from app.access.policy import LedgerPolicy, LinkPolicy
from app.catalog.model import Catalog, Field as CField
from app.errors import FieldError, Problem, invalid
from app.query import operators
from app.query.paths import BASE_FIELDS, From, PathError, PathRef, parse, policy_of
from app.report.dsl import Condition, TemplateSpec

MANY_OPS = ("exists", "not_exists", "count")
MAX_NESTING = 3  # exists / count conditions inside each other
_CMP = {
    "eq": "__eq__",
    "ne": "__ne__",
    "gt": "__gt__",
    "gte": "__ge__",
    "lt": "__lt__",
    "lte": "__le__",
}  # count compare


@dataclass
class Resolved:
    alias: FromClause  # table (or link) alias holding the value
    ledger: str
    field: CField
    policy: LedgerPolicy | LinkPolicy
    ref: PathRef


class Builder:
    def __init__(
        self,
        spec: TemplateSpec,
        policies: dict[str, LedgerPolicy],
        area: str,
        catalog: Catalog,
        *,
        names: Iterator[int] | None = None,
    ):
        self.spec, self.policies, self.area, self.catalog = spec, policies, area, catalog
        self.errors: list[FieldError] = []
        self.denied: list[FieldError] = []
        self.fields_used: set[str] = set()
        root = catalog.ledger(spec.ledger)
        if root is None:
            raise invalid(
                [FieldError("body.ledger", "template.ledger_unknown", "数据标准中没有该台账")], "报表模板有误"
            )
        self.root = root
        self.tables = From.of(catalog, policies, area, root.code, names)
        self.base = self.tables.root
        self.code_rows: int | None = None

    @property
    def from_(self) -> FromClause:
        return self.tables.clause

    def fork(self) -> Builder:
        """The same template over fresh table aliases, for a query of its own (a per-column aggregate over
        distinct records). What it finds wrong the original found already: its errors are dropped."""
        return Builder(self.spec, self.policies, self.area, self.catalog, names=self.tables.names)

    def base_where(self) -> list[ColumnElement]:
        """The template's rows: its ledger's records in the department's scope and the area, passing its filter."""
        return [
            self.policies[self.root.code].scope_clause(self.base),
            self._area(self.base),
            *self.conditions(self.spec.filter, "body.filter"),
        ]

    # ---- paths -----------------------------------------------------------------------------
    def _area(self, t) -> ColumnElement:
        return self.tables.in_area(t)

    def ref(
        self,
        path: str,
        where: str,
        *,
        fr: From | None = None,
        to_one: bool = True,
        ends_at_ledger: bool = False,
    ) -> PathRef | None:
        """Where a path goes (from fr's root, by default the template's ledger), or None after an error."""
        fr = fr or self.tables
        try:
            ref = parse(self.catalog, fr.ledger, path, ends_at_ledger=ends_at_ledger, link_hop=fr.link_hop)
        except PathError as e:
            self.errors.append(FieldError(where, e.code, e.message))
            return None
        many = ref.first_many()
        if to_one and many is not None:
            self.errors.append(
                FieldError(
                    where,
                    "template.path_to_many",
                    f"“{many.seg}”是一对多关联：请用 exists / not_exists / count 条件，"
                    "或统计列（每条关联记录只计一次）",
                )
            )
            return None
        if ref.field is not None and not ref.attribute and ref.field.code not in BASE_FIELDS:
            self.fields_used.add(f"{ref.ledger}.{ref.field.code}")
        return ref

    def resolve(self, path: str, where: str, fr: From | None = None) -> Resolved | None:
        """A one-to-one path joined onto fr (the template's FROM by default), or None after an error."""
        fr = fr or self.tables
        ref = self.ref(path, where, fr=fr)
        if ref is None:
            return None
        alias, _ = fr.value_alias(ref)
        assert ref.field is not None  # a value path ends at a field (ends_at_ledger is off)
        return Resolved(alias, ref.ledger, ref.field, policy_of(ref, self.policies), ref)

    def _access(self, fn, where: str):
        try:
            return fn(), None
        except Problem as p:
            err = FieldError(where, p.code, p.errors[0].message if p.errors else p.title)
            self.denied.append(err)
            return None, err

    def pull(self, path: str, where: str) -> tuple[ColumnElement, bool, Resolved] | None:
        """A readable value (masked in SQL if so granted), whether it is masked, and where it comes from."""
        r = self.resolve(path, where)
        if r is None:
            return None
        expr, err = self._access(lambda: r.policy.column(r.field.code, r.alias), where)
        if err:
            return null(), False, r
        return expr, r.policy.level(r.field.code) == Level.masked, r

    def check(self, ref: PathRef, where: str, op: str | None = None) -> bool:
        """May the department filter on (op given) or group / aggregate (op None) the path's field?"""
        f, pol = ref.field, policy_of(ref, self.policies)
        assert f is not None  # callers pass value paths
        if f.code in BASE_FIELDS and not ref.attribute:  # base columns: usable by anyone who sees the row
            return True
        fn = (lambda: pol.check_filter(f.code, op, where)) if op else (lambda: pol.check_sort(f.code, where))
        return self._access(fn, where)[1] is None

    def raw(
        self, path: str, where: str, *, op: str | None = None, fr: From | None = None
    ) -> tuple[ColumnElement, CField] | None:
        """The plain column for filtering (op given) or grouping / aggregating (op None)."""
        r = self.resolve(path, where, fr)
        if r is None:
            return None
        col = r.alias.c[r.field.code]
        # Typed NULL: an aggregate over a denied field (a live read narrowed to its reader) still plans.
        return (col if self.check(r.ref, where, op) else cast(null(), col.type)), r.field

    # ---- conditions ------------------------------------------------------------------------
    def condition(
        self, c: Condition, where: str, fr: From | None = None, depth: int = 0
    ) -> ColumnElement | None:
        if c.op in MANY_OPS:
            return self._many(c, where, fr or self.tables, depth)
        for name in ("where", "compare"):
            if getattr(c, name):
                self.errors.append(
                    FieldError(
                        f"{where}.{name}",
                        "template.condition_shape",
                        f"{name} 只用于 exists / not_exists / count 条件",
                    )
                )
                return None
        got = self.raw(c.path, f"{where}.path", op=c.op, fr=fr)
        if got is None:
            return None
        col, f = got
        # One operator table for REST, GraphQL and templates (app/query/operators.py); errors collected.
        cond = operators.condition(
            col, f, c.op, c.value, f"{where}.value", self.catalog, codes=operators.TEMPLATE
        )
        if isinstance(cond, list):
            self.errors.extend(cond)
            return None
        return cond

    def _many(self, c: Condition, where: str, fr: From, depth: int) -> ColumnElement | None:
        """exists / not_exists / count over the records a path reaches (one-to-many allowed): a correlated
        subquery, each record on the way in its ledger's scope, `where` conditions relative to the far record
        (`@code`: an attribute of the link that reached it)."""
        ref = self.ref(c.path, f"{where}.path", fr=fr, to_one=False, ends_at_ledger=True)
        if depth >= MAX_NESTING:
            self.errors.append(
                FieldError(f"{where}.op", "template.nesting", f"exists / count 条件最多嵌套 {MAX_NESTING} 层")
            )
            return None
        if ref is None:
            return None
        sub = fr.reach(ref)
        maybe = [self.condition(x, f"{where}.where.{i}", sub, depth + 1) for i, x in enumerate(c.where)]
        conds = [x for x in maybe if x is not None]
        if len(conds) < len(maybe):
            return None
        vpath = f"{where}.value"
        if c.op != "count":
            if c.value is not None or c.compare is not None:
                self.errors.append(
                    FieldError(
                        vpath if c.value is not None else f"{where}.compare",
                        "template.value",
                        "exists / not_exists 不取 value、compare",
                    )
                )
                return None
            found = exists(select(literal(1)).select_from(sub.clause).where(*sub.where, *conds))
            return found if c.op == "exists" else ~found
        if c.compare is None:
            self.errors.append(
                FieldError(f"{where}.compare", "template.compare", "count 条件需要 compare（eq、gte 等）")
            )
            return None
        if isinstance(c.value, bool) or not isinstance(c.value, int) or not 0 <= c.value <= 1_000_000:
            self.errors.append(FieldError(vpath, "template.value", "count 条件的值应为 0 到 1000000 的整数"))
            return None
        # One hop reaches each far record once (a link per pair, an extension row per record); longer
        # paths may reach one by several ways.
        n = func.count() if len(ref.hops) == 1 else func.count(distinct(sub.root.c.id))
        counted = select(n).select_from(sub.clause).where(*sub.where, *conds).scalar_subquery()
        return getattr(counted, _CMP[c.compare])(c.value)

    def conditions(self, conds: list[Condition], where: str) -> list[ColumnElement]:
        out = [self.condition(c, f"{where}.{i}") for i, c in enumerate(conds)]
        return [c for c in out if c is not None]
