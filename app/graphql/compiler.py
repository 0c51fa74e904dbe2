"""A root ledger field's selection -> ONE SQL statement whose single value is the field's JSON.

Shape of what is generated, for `persons(first: 2) { nodes { name residence { house { houseCode } } } }`:

    SELECT json_build_object('nodes', coalesce(json_agg(r.n ORDER BY r.rn) FILTER (WHERE r.rn <= 2), '[]'))
    FROM (SELECT json_build_object('name', p.name, 'residence', l1._v) AS n, row_number() OVER (...) AS rn
          FROM (SELECT ... FROM lg_person t WHERE <scope> AND <filters> ORDER BY ... LIMIT 3) p
          LEFT JOIN LATERAL (SELECT json_build_object(...) AS _v FROM (<house page, its scope>) ...) l1 ON true) r

Every ledger reached (root, relation ends, extensions, parents) is read through its own access policy:
its row scope is in the page's WHERE and its masks in the column expressions, so no raw value of a
masked field and no row outside the caller's scope reaches the JSON. Pages are limited before the
lateral joins run, so nested work is done only for the rows returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import GraphQLError
from sqlalchemy import Text, and_, bindparam, cast, column, func, literal_column, null, select, true, tuple_
from sqlalchemy.dialects.postgresql import JSON, aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause, LateralFromClause, Select

from app.access.levels import DEFAULT_FOR_SENSITIVITY, Level
from app.access.policy import LedgerPolicy
from app.catalog.model import MaskRule, Relation
from app.graphql import filters, limits
from app.graphql.cache import Bind, Var, shape_of
from app.graphql.spec import (
    MASKABLE_SCALARS,
    Column,
    ExtensionField,
    LinkAttribute,
    LinkEnd,
    ParentField,
    RelationField,
    registry,
)
from app.query import keyset, operators, sources
from app.query.fields import BASE_FIELDS
from app.query.keyset import SortKey
from app.query.problems import query_problem

FieldGroup = list  # graphql-core FieldDetails of one response key
Path = list  # response path template; "*" stands for any list index


class Selection(Protocol):
    """What the compiler needs from graphql-core's executor (fragments, directives and variables)."""

    def fields(self, type_name: str, group: FieldGroup) -> dict[str, FieldGroup]: ...

    def args(self, type_name: str, group: FieldGroup) -> dict[str, Any]: ...


class Policies(Protocol):
    settings: Any

    def policy(self, ledger: str) -> LedgerPolicy: ...


@dataclass
class Withheld:
    """A selected field answered with null: hidden, or masked but not representable in its type."""

    path: Path
    error: GraphQLError


@dataclass(frozen=True)
class Link:
    """How far rows hang off a near row through a relation's link table."""

    relation: Relation
    near: str  # link column holding the near record id
    far: str
    near_id: ColumnElement


def jobj(pairs: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    # Response keys are GraphQL names ([_A-Za-z][_0-9A-Za-z]*), so they are safe as SQL literals.
    args: list[ColumnElement] = []
    for key, value in pairs:
        args += [literal_column(f"'{key}'"), value]
    return func.json_build_object(*args, type_=JSON)


def _lit(value: str) -> ColumnElement:
    return literal_column("'" + value.replace("'", "''") + "'")


def _where(path: Path) -> str:
    return ".".join(str(p) for p in path if p != "*")


def _joined(page: FromClause, laterals: list) -> FromClause:
    out = page
    for lat in laterals:
        out = out.outerjoin(lat, true())
    return out


class Compiler:
    def __init__(self, ctx: Policies, sel: Selection):
        self.ctx, self.sel, self.reg = ctx, sel, registry()
        self.withheld: list[Withheld] = []
        self.audits: dict[
            str, tuple[str, tuple[str, ...]]
        ] = {}  # "~n" key -> (ledger, plain sensitive fields)
        self._n = 0
        self._plain_cache: dict[str, frozenset[str]] = {}
        # Variables bound as parameters (cache.py): how each bound value derives from its variable.
        self.binds: list[Bind] = []

    def bind(self, raw: Any, convert: Callable[[Any], tuple], types: list | None = None) -> tuple:
        """Values converted from an argument; bind parameters where it is a parametric variable (a
        `Var`), so the statement can be run again with that variable's next value. A null stays a
        null (`IS NULL`, no parameter): part of the shape a later value must match (cache.Bind)."""
        if not isinstance(raw, Var):
            return convert(raw)
        values = convert(raw.value)
        n = len(self.binds)
        names = tuple(f"gqlv{n}_{i}" for i in range(len(values)))
        self.binds.append(Bind(raw.name, names, convert, shape_of(values)))
        return tuple(
            v if v is None else bindparam(name, v, type_=(types[i] if types else None))
            for i, (name, v) in enumerate(zip(names, values, strict=True))
        )

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    # ---- roots -------------------------------------------------------------------------------------
    def root(self, kind: str, ledger: str, type_name: str, group: FieldGroup, args: dict, key: str) -> Select:
        if kind == "aggregate":
            stmt = self.aggregate(ledger, type_name, group, args, key)
        elif kind == "list":
            stmt = self.connection(ledger, type_name, group, args, [key], 1)
        else:
            t = sources.ledger_table(self.ctx.policy(ledger))
            (rid,) = self.bind(
                args["id"], lambda v: (operators.value(BASE_FIELDS["id"], v, f"{key}.id"),), [t.c.id.type]
            )
            stmt = self.single(ledger, type_name, group, [key], 1, lambda t: [t.c.id == rid])
        sq = stmt.subquery("root")
        return select(cast(sq.c._v, Text)).select_from(sq)

    # ---- one page of far rows ---------------------------------------------------------------------
    def _needs(self, type_name: str, groups: list[FieldGroup], link: Link | None) -> set[str]:
        """The ledger columns the items of a page use: pages project only these (cheaper to build and
        to run than every column)."""
        spec = self.reg.types[type_name]
        out = {"id"}
        for group in groups:
            for sub in self.sel.fields(type_name, group).values():
                kind = spec.fields.get(sub[0].node.name.value)
                if isinstance(kind, Column):
                    out.add(kind.code)
                elif isinstance(kind, ParentField):
                    out.add("parent_id")
                elif isinstance(kind, LinkEnd) and link is not None and kind.side == _far_side(link):
                    out |= self._needs(self.reg.ledgers[kind.ledger].node, [sub], None)
        return out

    def _page(
        self,
        ledger: str,
        t: FromClause,
        conds: list,
        keys: list[SortKey],
        limit: int,
        link: Link | None,
        outer: FromClause | None,
        needs: set[str],
    ) -> LateralFromClause:
        pol = self.ctx.policy(ledger)
        needs = needs | {k.code for k in keys}
        cols, frm = [c for c in t.c if c.name in needs], t
        if link is not None:
            lt = sources.link_table(link.relation)
            frm = t.join(lt, and_(lt.c[link.far] == t.c.id, lt.c.deleted_at.is_(None)))
            conds = [*conds, lt.c[link.near] == link.near_id]
            cols += [lt.c.from_id.label("_l_from_id"), lt.c.to_id.label("_l_to_id")]
            cols += [lt.c[a.code].label("_l_" + a.code) for a in link.relation.attributes]
        stmt = (
            select(*cols)
            .select_from(frm)
            .where(pol.scope_clause(t), *conds)
            .order_by(*keyset.order_by(keys))
            .limit(limit)
        )
        # The page refers to the outer row (two query levels up): correlate explicitly, or SQLAlchemy
        # would add the outer FROM again inside and join every outer row.
        if outer is not None:
            stmt = stmt.correlate(outer)
        return stmt.lateral(self._name("p"))

    def single(
        self,
        ledger: str,
        item_type: str,
        group: FieldGroup,
        path: Path,
        rows: int,
        conds: Callable[[FromClause], list],
        link: Link | None = None,
        outer: FromClause | None = None,
    ) -> Select:
        """At most one row (a record by id, a single relation, an extension, a parent) as JSON `v`."""
        t = sources.ledger_table(self.ctx.policy(ledger))  # each page is its own query level: no alias needed
        keys = [keyset.id_key(t)]
        page = self._page(ledger, t, conds(t), keys, 1, link, outer, self._needs(item_type, [group], link))
        expr, lats = self.item(item_type, group, page, path, rows, link)
        return select(expr.label("_v")).select_from(_joined(page, lats))

    def connection(
        self,
        ledger: str,
        conn_type: str,
        group: FieldGroup,
        args: dict,
        path: Path,
        rows: int,
        conds: Callable[[FromClause], list] = lambda t: [],
        link: Link | None = None,
        outer: FromClause | None = None,
    ) -> Select:
        """A keyset page (nodes / edges / pageInfo) as JSON `v`, with the REST list semantics."""
        names, pol, where = self.reg.ledgers[ledger], self.ctx.policy(ledger), _where(path)
        first = limits.page_size(args.get("first"), self.ctx.settings, f"{where}.first")
        limits.check_rows(rows * first, where)
        t = sources.ledger_table(pol)
        cs = [*conds(t), *filters.where(pol, t, names, args.get("filter"), f"{where}.filter", self.bind)]
        keys = filters.sort_keys(pol, t, args.get("orderBy"), f"{where}.orderBy")
        if args.get("after"):
            cs.append(filters.after(keys, args["after"], where, self.bind))
        item_type = conn_type.removesuffix("Connection")
        items: list[FieldGroup] = []
        for sub in self.sel.fields(conn_type, group).values():
            if sub[0].node.name.value == "nodes":
                items.append(sub)
            elif sub[0].node.name.value == "edges":
                items += [
                    e
                    for e in self.sel.fields(item_type + "Edge", sub).values()
                    if e[0].node.name.value == "node"
                ]
        page = self._page(ledger, t, cs, keys, first + 1, link, outer, self._needs(item_type, items, link))
        pkeys = keyset.rebind(keys, page)
        row_cols: list[ColumnElement] = [func.row_number().over(order_by=keyset.order_by(pkeys)).label("rn")]
        lats: list = []
        top: list[tuple[str, Callable[[LateralFromClause], ColumnElement]]] = []
        need_cursor = False

        def as_list(label: str) -> Callable[[LateralFromClause], ColumnElement]:
            return lambda r: func.coalesce(
                func.json_agg(aggregate_order_by(r.c[label], r.c.rn)).filter(r.c.rn <= first),
                literal_column("'[]'::json"),
            )

        for key, sub in self.sel.fields(conn_type, group).items():
            name = sub[0].node.name.value
            if name == "nodes":
                expr, more = self.item(item_type, sub, page, [*path, key, "*"], rows * first, link)
                label = self._name("n")
                lats += more
                row_cols.append(expr.label(label))
                top.append((key, as_list(label)))
            elif name == "edges":
                pairs = []
                for ekey, esub in self.sel.fields(item_type + "Edge", sub).items():
                    ename = esub[0].node.name.value
                    if ename == "node":
                        expr, more = self.item(
                            item_type, esub, page, [*path, key, "*", ekey], rows * first, link
                        )
                        lats += more
                        pairs.append((ekey, expr))
                    elif ename == "cursor":
                        pairs.append((ekey, keyset.cursor_sql(pkeys)))
                    else:
                        pairs.append((ekey, _lit(item_type + "Edge")))
                label = self._name("e")
                row_cols.append(jobj(pairs).label(label))
                top.append((key, as_list(label)))
            elif name == "pageInfo":
                parts: list[tuple[str, Callable[[LateralFromClause], ColumnElement]]] = []
                for pkey, psub in self.sel.fields("PageInfo", sub).items():
                    pname = psub[0].node.name.value
                    if pname == "hasNextPage":
                        parts.append((pkey, lambda r: func.count() > first))
                    elif pname == "endCursor":
                        need_cursor = True
                        parts.append(
                            (pkey, lambda r: func.max(r.c.c).filter(r.c.rn == func.least(r.c.cnt, first)))
                        )
                    else:
                        parts.append((pkey, lambda r: _lit("PageInfo")))

                def page_info(
                    r: LateralFromClause,
                    parts: list[tuple[str, Callable[[LateralFromClause], ColumnElement]]] = parts,
                ) -> ColumnElement:
                    return jobj([(k, f(r)) for k, f in parts])

                top.append((key, page_info))
            else:
                top.append((key, lambda r: _lit(conn_type)))
        if need_cursor:
            row_cols += [keyset.cursor_sql(pkeys).label("c"), func.count().over().label("cnt")]
        r = select(*row_cols).select_from(_joined(page, lats)).lateral(self._name("r"))
        return select(jobj([(k, f(r)) for k, f in top]).label("_v")).select_from(r)

    # ---- objects -----------------------------------------------------------------------------------
    def item(
        self,
        type_name: str,
        group: FieldGroup,
        src: FromClause,
        path: Path,
        rows: int,
        link: Link | None = None,
    ) -> tuple[ColumnElement, list]:
        if link is not None and self.reg.types[type_name].kind == "link":
            return self.link(type_name, group, src, path, rows, _far_side(link))
        return self.node(type_name, group, src, path, rows)

    def node(
        self, type_name: str, group: FieldGroup, src: FromClause, path: Path, rows: int
    ) -> tuple[ColumnElement, list]:
        spec = self.reg.types[type_name]
        ledger = spec.ledger
        assert ledger is not None
        pol = self.ctx.policy(ledger)
        pairs: list[tuple[str, ColumnElement]] = []
        lats: list = []
        plain: list[str] = []
        for key, sub in self.sel.fields(type_name, group).items():
            name = sub[0].node.name.value
            kind = spec.fields.get(name)
            here = [*path, key]
            if kind is None:
                pairs.append((key, _lit(type_name)))  # __typename
            elif isinstance(kind, Column):
                pairs.append((key, self._column(pol, kind, src, here, sub)))
                if kind.code in self._plain(ledger):
                    plain.append(kind.code)
            else:
                lat = self._related(kind, type_name, sub, src, here, rows).lateral(self._name("x"))
                lats.append(lat)
                pairs.append((key, lat.c._v))
        if plain:
            # Unmasked sensitive values are audited with the ids of the rows that carried them. The id
            # rides along under a key no GraphQL name can have; the executor strips it.
            tag = self._name("~")
            self.audits[tag] = (ledger, tuple(sorted(set(plain))))
            pairs.append((tag, src.c.id))
        return jobj(pairs), lats

    def _column(
        self, pol: LedgerPolicy, col: Column, src: FromClause, path: Path, sub: FieldGroup
    ) -> ColumnElement:
        expr: ColumnElement[Any]
        if col.base:  # id, region, version, timestamps, parent_id: shown with any visible row
            expr = src.c[col.code]
        else:
            fa = pol.fields.get(col.code)
            if fa is None or fa.level == Level.hidden:
                return self._withhold(path, sub, "FORBIDDEN_FIELD", "无权访问该字段")
            if fa.level == Level.masked and col.scalar not in MASKABLE_SCALARS:
                return self._withhold(
                    path, sub, "MASKED_FIELD", "该字段已脱敏，其类型无法表示脱敏值，返回 null"
                )
            expr = _masked(pol, col.code, fa.mask) if fa.level == Level.masked else pol.column(col.code, src)
        return cast(expr, Text) if col.scalar == "ID" else expr

    def _plain(self, ledger: str) -> frozenset[str]:
        """Fields this caller reads unmasked although they are sensitive or secret (audited)."""
        got = self._plain_cache.get(ledger)
        if got is None:
            got = self._plain_cache[ledger] = frozenset(self.ctx.policy(ledger).plain_sensitive_fields)
        return got

    def _withhold(self, path: Path, sub: FieldGroup, code: str, message: str) -> ColumnElement:
        nodes = [d.node for d in sub]
        self.withheld.append(Withheld(path, GraphQLError(message, nodes, extensions={"code": code})))
        return null()

    def _related(
        self, kind: object, type_name: str, sub: FieldGroup, src: FromClause, path: Path, rows: int
    ) -> Select:
        if isinstance(kind, RelationField):
            near, far = ("from_id", "to_id") if kind.direction == "forward" else ("to_id", "from_id")
            link = Link(kind.relation, near, far, src.c.id)
            if kind.many:
                args = self.sel.args(type_name, sub)
                return self.connection(
                    kind.far, kind.link_type + "Connection", sub, args, path, rows, link=link, outer=src
                )
            return self.single(kind.far, kind.link_type, sub, path, rows, lambda t: [], link, src)
        if isinstance(kind, ExtensionField):
            node = self.reg.ledgers[kind.ledger].node

            def of_parent(t: FromClause) -> list:
                return [t.c.parent_id == src.c.id]

            if kind.many:
                args = self.sel.args(type_name, sub)
                return self.connection(
                    kind.ledger, node + "Connection", sub, args, path, rows, of_parent, outer=src
                )
            return self.single(kind.ledger, node, sub, path, rows, of_parent, outer=src)
        if isinstance(kind, ParentField):
            return self.single(
                kind.ledger,
                self.reg.ledgers[kind.ledger].node,
                sub,
                path,
                rows,
                lambda t: [t.c.id == src.c.parent_id],
                outer=src,
            )
        raise TypeError(kind)

    def link(
        self, type_name: str, group: FieldGroup, src: FromClause, path: Path, rows: int, far_side: str
    ) -> tuple[ColumnElement, list]:
        """A link row: its attributes, the far record (already in `src`) and the near one (looked up)."""
        spec = self.reg.types[type_name]
        pairs: list[tuple[str, ColumnElement]] = []
        lats: list = []
        for key, sub in self.sel.fields(type_name, group).items():
            name = sub[0].node.name.value
            kind = spec.fields.get(name)
            here = [*path, key]
            if kind is None:
                pairs.append((key, _lit(type_name)))
            elif isinstance(kind, LinkAttribute):
                # Link attributes carry no grants of their own (as in REST): only user-default-readable ones.
                if DEFAULT_FOR_SENSITIVITY[kind.field.sensitivity] >= Level.read:
                    pairs.append((key, src.c["_l_" + kind.code]))
                else:
                    pairs.append((key, self._withhold(here, sub, "FORBIDDEN_FIELD", "无权访问该字段")))
            elif isinstance(kind, LinkEnd) and kind.side == far_side:
                expr, more = self.node(self.reg.ledgers[kind.ledger].node, sub, src, here, rows)
                pairs.append((key, expr))
                lats += more
            elif isinstance(kind, LinkEnd):
                id_col = src.c["_l_from_id" if kind.side == "source" else "_l_to_id"]

                def same_id(t: FromClause, id_col: ColumnElement[Any] = id_col) -> list[ColumnElement[bool]]:
                    return [t.c.id == id_col]

                lat = self.single(
                    kind.ledger, self.reg.ledgers[kind.ledger].node, sub, here, rows, same_id, outer=src
                ).lateral(self._name("x"))
                lats.append(lat)
                pairs.append((key, lat.c._v))
        return jobj(pairs), lats

    # ---- aggregates --------------------------------------------------------------------------------
    def aggregate(self, ledger: str, type_name: str, group: FieldGroup, args: dict, key: str) -> Select:
        names, pol = self.reg.ledgers[ledger], self.ctx.policy(ledger)
        t = sources.ledger_table(pol)
        conds = [
            pol.scope_clause(t),
            *filters.where(pol, t, names, args.get("filter"), f"{key}.filter", self.bind),
        ]
        by = [filters.enum_value(g) for g in args.get("groupBy") or []]
        key_exprs: list[ColumnElement] = []
        for i, code in enumerate(by):
            if code in by[:i]:
                raise query_problem(f"{key}.groupBy[{i}]", "group.duplicate", "分组字段重复")
            if code == "township":
                key_exprs.append(func.concat(func.left(t.c.region_code, literal_column("9")), _lit("000")))
            elif code == "village":
                key_exprs.append(func.left(t.c.region_code, literal_column("12")))
            else:
                pol.check_sort(code, f"{key}.groupBy[{i}]")  # grouping reveals values: read level needed
                key_exprs.append(t.c[code])
        s = select(*t.c, *[e.label(f"_k{i}") for i, e in enumerate(key_exprs)]).where(*conds).subquery("s")
        kcols: dict[str, ColumnElement[Any]] = {code: s.c[f"_k{i}"] for i, code in enumerate(by)}
        node = names.node
        top: list[tuple[str, ColumnElement | None]] = []
        group_json: ColumnElement | None = None
        for k, sub in self.sel.fields(type_name, group).items():
            if sub[0].node.name.value == "groups":
                gpairs = self._metrics(ledger, node + "AggregateGroup", sub, s, kcols, f"{key}.groups")
                group_json = jobj(gpairs)
                top.append((k, None))
            else:
                top += self._metrics(ledger, type_name, [*sub], s, None, key, only=k)
        if group_json is None or not key_exprs:
            pairs: list[tuple[str, ColumnElement[Any]]] = []
            for k, v in top:
                if v is None:  # the groups field: it set group_json
                    assert group_json is not None
                    v = func.json_build_array(group_json)
                pairs.append((k, v))
            return select(jobj(pairs).label("_v")).select_from(s)
        kc = list(kcols.values())
        inner = (
            select(
                func.grouping(*kc).label("_g"),
                *kc,
                group_json.label("_grp"),
                *[
                    cast(func.to_json(v), Text).label(f"_t{i}")
                    for i, (_, v) in enumerate(top)
                    if v is not None
                ],
            )
            .select_from(s)
            .group_by(func.grouping_sets(tuple_(*kc), literal_column("()")))
            .subquery("g")
        )
        out: list[tuple[str, ColumnElement[Any]]] = []
        for i, (k, v) in enumerate(top):
            if v is None:
                ordered = aggregate_order_by(inner.c._grp, *[inner.c[c.name].asc().nulls_last() for c in kc])
                out.append(
                    (
                        k,
                        func.coalesce(
                            func.json_agg(ordered).filter(inner.c._g == 0), literal_column("'[]'::json")
                        ),
                    )
                )
            else:
                out.append((k, cast(func.max(inner.c[f"_t{i}"]).filter(inner.c._g != 0), JSON)))
        return select(jobj(out).label("_v")).select_from(inner)

    def _metrics(
        self,
        ledger: str,
        type_name: str,
        group: FieldGroup,
        s: FromClause,
        keys: dict[str, ColumnElement] | None,
        where: str,
        only: str | None = None,
    ) -> list[tuple[str, ColumnElement]]:
        """count / sum / avg / min / max (and a group's key) over the rows of `s`."""
        pol = self.ctx.policy(ledger)
        node = self.reg.ledgers[ledger].node
        fields = {only: group} if only else self.sel.fields(type_name, group)
        out: list[tuple[str, ColumnElement]] = []
        for k, sub in fields.items():
            name = sub[0].node.name.value
            if name == "count":
                out.append((k, func.count()))
            elif name in ("sum", "avg", "min", "max"):
                spec_name = node + ("AggregateNumbers" if name in ("sum", "avg") else "AggregateExtremes")
                pairs = []
                for k2, sub2 in self.sel.fields(spec_name, sub).items():
                    col = self.reg.types[spec_name].fields.get(sub2[0].node.name.value)
                    if not isinstance(col, Column):
                        pairs.append((k2, _lit(spec_name)))
                        continue
                    pol.check_sort(col.code, f"{where}.{name}.{k2}")  # aggregating needs the plain value
                    pairs.append((k2, getattr(func, name)(s.c[col.code])))
                out.append((k, jobj(pairs)))
            elif name == "key":
                spec = self.reg.types[node + "AggregateKey"]
                pairs = []
                for k2, sub2 in self.sel.fields(spec.name, sub).items():
                    code = spec.fields.get(sub2[0].node.name.value)
                    pairs.append(
                        (
                            k2,
                            (keys or {}).get(code, null())
                            if isinstance(code, str) and code
                            else _lit(spec.name),
                        )
                    )
                out.append((k, jobj(pairs)))
            else:
                out.append((k, _lit(type_name)))
        return out


class _Bare:
    """Stands in for a page: its columns render unqualified (`id_number`, not `p2.id_number`)."""

    def __init__(self, table):
        self.c = {c.name: column(c.name, c.type) for c in table.c}


_MASKED: dict[tuple[str, str, MaskRule], ColumnElement] = {}


def _masked(pol: LedgerPolicy, code: str, rule: MaskRule) -> ColumnElement:
    """The policy's mask expression for a field, built once per (ledger, field, rule) and reused.

    Building mask expressions was half the cost of compiling a request. Unqualified column names are
    unambiguous where node JSON is evaluated: the page is the only FROM item there with ledger columns
    (lateral joins beside it expose only `_v`)."""
    key = (pol.ledger.code, code, rule)
    expr = _MASKED.get(key)
    if expr is None:
        expr = _MASKED[key] = pol.column(code, _Bare(sources.ledger_table(pol)))  # type: ignore[arg-type]
    return expr


def _far_side(link: Link) -> str:
    return "target" if link.far == "to_id" else "source"
