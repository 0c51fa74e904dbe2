"""Paths through the catalogue: a record's fields, the records its relations and extensions reach (one or
many), and the attributes of the links on the way.

A path is dot-separated segments from a ledger: hops, then a field — `name`, `residence.floor_area`
(person → house), `disability.disability_type` (an extension), `parent.name` (extension → its record),
`residents.is_disabled` (house → persons, one-to-many). `@code` names an attribute of the link of the
hop just before it: `household.@relation_to_head`; alone (`@role`) it names an attribute of the link
that led into the current scope (inside an `exists` over `members`).

`parse` is pure (catalogue only): it says where a path goes, whether it stays one-to-one, and which
policy decides over its last field (`policy_of`). `From` turns parsed paths into SQL through the
reader's LedgerPolicy per ledger: every joined record brings its own row scope, a link to a record
outside it does not exist, and an area prefix (a township's, or a department's whole jurisdiction)
narrows every table. One-to-one hops are LEFT JOINed (an unreadable record reads as empty); paths with a
one-to-many hop become correlated pieces (`From.reach`: a FROM for EXISTS / count subqueries) or inner
joins of a query of their own, never joins that would multiply the rows of the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from sqlalchemy import and_
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from app.access.policy import LedgerPolicy, LinkPolicy
from app.catalog.model import Catalog, Field, FieldType, Relation
from app.db.ledger_tables import tables

# Base columns every record has, typed like catalogue fields (filterable and groupable with the row).
BASE_FIELDS = {
    "id": Field("id", "记录编号", FieldType.integer),
    "region_code": Field("region_code", "所属区划", FieldType.text),
    "created_at": Field("created_at", "创建时间", FieldType.datetime),
    "updated_at": Field("updated_at", "更新时间", FieldType.datetime),
}
MAX_HOPS = 4
ATTRIBUTE = "@"


@dataclass(frozen=True)
class Hop:
    """One segment from a ledger to another: a relation (either direction), an extension, or `parent`."""

    seg: str
    near: str
    far: str
    relation: Relation | None
    direction: str  # forward | backward | extension | parent
    to_one: bool  # at most one far record per near record
    one_to_one: bool  # … and at most one near record per far record: a far value belongs to one row

    def ends(self, link: FromClause) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """(near-side id column, far-side id column) of this hop's link table."""
        return (
            (link.c.from_id, link.c.to_id) if self.direction == "forward" else (link.c.to_id, link.c.from_id)
        )


def hop(catalog: Catalog, ledger: str, seg: str) -> Hop | None:
    for rel, direction in catalog.relations_of(ledger):
        if direction == "forward" and rel.forward == seg:
            return Hop(
                seg,
                ledger,
                rel.target,
                rel,
                direction,
                not rel.forward_many,
                not rel.forward_many and not rel.backward_many,
            )
        if direction == "backward" and rel.backward == seg:
            return Hop(
                seg,
                ledger,
                rel.source,
                rel,
                direction,
                not rel.backward_many,
                not rel.forward_many and not rel.backward_many,
            )
    ext = catalog.ledger(seg)
    if ext is not None and ext.parent == ledger:
        one = ext.cardinality == "one"
        return Hop(seg, ledger, seg, None, "extension", one, one)
    lg = catalog.ledger(ledger)
    if lg is not None and lg.kind == "extension" and lg.parent is not None and seg == "parent":
        return Hop(seg, ledger, lg.parent, None, "parent", True, lg.cardinality == "one")
    return None


class PathError(Exception):
    """A path the catalogue does not have; `code` and a message in Chinese for the field path."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class PathRef:
    root: str
    hops: tuple[Hop, ...]
    field: Field | None  # None: the path ends at a ledger (what EXISTS / count range over)
    link_hop: Hop | None = None  # set when `field` is an attribute of this hop's link

    @property
    def ledger(self) -> str:
        """The ledger the path ends in (for an attribute: the ledger the link leads to)."""
        return self.hops[-1].far if self.hops else self.root

    @property
    def attribute(self) -> bool:
        return self.link_hop is not None

    @property
    def to_one(self) -> bool:
        return all(h.to_one for h in self.hops)

    @property
    def direct(self) -> bool:
        """Each value belongs to one row of the root: aggregating it needs no de-duplication."""
        return all(h.one_to_one for h in self.hops) and not (self.attribute and self.hops)

    def first_many(self) -> Hop | None:
        return next((h for h in self.hops if not h.to_one), None)


def parse(
    catalog: Catalog, root: str, path: str, *, ends_at_ledger: bool = False, link_hop: Hop | None = None
) -> PathRef:
    """Where `path` goes from `root`. ends_at_ledger: hops only (EXISTS / count); link_hop: the hop that led
    into `root`, whose link a leading `@code` names."""
    segs = path.split(".")
    hops_segs = segs if ends_at_ledger else segs[:-1]
    if len(hops_segs) > MAX_HOPS:
        raise PathError("template.path_too_long", f"路径最多经过 {MAX_HOPS} 次关联")
    ledger, hops = root, []
    for seg in hops_segs:
        if seg.startswith(ATTRIBUTE):
            raise PathError("template.path_attribute", "关联属性（@）只能是路径的最后一段")
        h = hop(catalog, ledger, seg)
        if h is None:
            raise PathError("template.path_unknown", f"“{ledger}”台账没有关联或专题“{seg}”")
        hops.append(h)
        ledger = h.far
    if ends_at_ledger:
        return PathRef(root, tuple(hops), None)
    last = segs[-1]
    if last.startswith(ATTRIBUTE):
        via = hops[-1] if hops else link_hop
        if via is None or via.relation is None:
            raise PathError(
                "template.link_attribute", "关联属性（@）须紧跟一个关联，如 household.@relation_to_head"
            )
        code = last[1:]
        f = next((a for a in via.relation.attributes if a.code == code), None)
        if f is None:
            raise PathError("template.field_unknown", f"“{via.relation.label}”关联没有属性“{code}”")
        return PathRef(root, tuple(hops), f, via)
    f = BASE_FIELDS.get(last) or catalog.ledgers[ledger].field(last)
    if f is None:
        raise PathError("template.field_unknown", f"“{ledger}”台账没有字段“{last}”")
    return PathRef(root, tuple(hops), f)


def policy_of(ref: PathRef, policies: dict[str, LedgerPolicy]) -> LedgerPolicy | LinkPolicy:
    """The policy that decides over the path's last field: its ledger's, or its link's."""
    if ref.link_hop is not None:
        assert ref.link_hop.relation is not None, "a link hop always names its relation"
        return LinkPolicy(ref.link_hop.relation)
    return policies[ref.ledger]


@dataclass
class From:
    """A FROM clause under construction: a root record (table alias), the one-to-one hops LEFT JOINed onto
    it (memoised per path), and the link that led to the root, if any (for `@` attributes)."""

    catalog: Catalog
    policies: dict[str, LedgerPolicy]
    area: str
    ledger: str
    root: FromClause
    names: Iterator[int] = field(default_factory=lambda: count(1))
    link: FromClause | None = None
    link_hop: Hop | None = None
    where: list[ColumnElement[Any]] = field(default_factory=list)  # correlation and scope of a `reach`

    def __post_init__(self) -> None:
        self.clause: FromClause = self.root
        self.joins: dict[tuple[str, ...], tuple[FromClause, FromClause | None]] = {(): (self.root, self.link)}

    @classmethod
    def of(
        cls,
        catalog: Catalog,
        policies: dict[str, LedgerPolicy],
        area: str,
        ledger: str,
        names: Iterator[int] | None = None,
    ) -> From:
        n = names or count(1)
        name = "t0" if names is None else f"t{next(n)}"
        return cls(catalog, policies, area, ledger, policies[ledger].table.alias(name), n)

    def in_area(self, t: FromClause) -> ColumnElement[Any]:
        return t.c.region_code.like(self.area + "%")

    def ok(self, ledger: str, t: FromClause) -> ColumnElement[Any]:
        """A record of this ledger the policy lets the reader see, inside the area."""
        return and_(self.policies[ledger].scope_clause(t), self.in_area(t))

    def _step(
        self, h: Hop, near: FromClause
    ) -> tuple[FromClause, FromClause | None, FromClause, ColumnElement[Any]]:
        """(far alias, link alias, what to join, its ON clause) for one hop from `near`."""
        n = next(self.names)
        far = self.policies[h.far].table.alias(f"t{n}")
        if h.relation is not None:
            link = tables().relations[h.relation.code].alias(f"l{n}")
            a, b = h.ends(link)
            # The link and its far record join as one: a link to a record the reader can't see is no link.
            unit = link.join(far, and_(far.c.id == b, self.ok(h.far, far)))
            return far, link, unit, and_(a == near.c.id, link.c.deleted_at.is_(None), self.in_area(link))
        if h.direction == "extension":
            return far, None, far, and_(far.c.parent_id == near.c.id, self.ok(h.far, far))
        return far, None, far, and_(far.c.id == near.c.parent_id, self.ok(h.far, far))

    def join(self, ref: PathRef, *, inner: bool = False) -> tuple[FromClause, FromClause | None]:
        """(alias holding the path's value, the last hop's link alias) with the path's hops joined.

        LEFT JOINs (memoised) for one-to-one paths; inner: plain JOINs of their own, for a query that
        ranges over the records the path reaches (one-to-many allowed)."""
        alias, link, key = self.root, self.link, ("inner",) if inner else ()
        for h in ref.hops:
            key = (*key, h.seg)
            got = self.joins.get(key)
            if got is None:
                far, link_, unit, on = self._step(h, alias)
                self.clause = self.clause.join(unit, on) if inner else self.clause.outerjoin(unit, on)
                got = self.joins[key] = (far, link_)
            alias, link = got
        return alias, link

    def value_alias(self, ref: PathRef, *, inner: bool = False) -> tuple[FromClause, ColumnElement[Any]]:
        """(alias holding the path's last field, the id of the record or link the value belongs to)."""
        alias, link = self.join(ref, inner=inner)
        if ref.attribute:
            assert link is not None, "an attribute path ends in a link"
            return link, link.c.id
        return alias, alias.c.id

    def reach(self, ref: PathRef) -> From:
        """A FROM for a correlated subquery over the records `ref` (hops only) reaches from this root: the
        first hop tied to the outer row in `where`, the rest inner-joined; each record in its scope."""
        near, first, *rest = self.root, *ref.hops
        far, link, unit, on = self._step(first, near)
        sub = From(self.catalog, self.policies, self.area, first.far, far, self.names, link, first, [on])
        sub.clause = unit
        sub.joins = {(): (far, link)}
        for h in rest:
            far2, link2, unit2, on2 = sub._step(h, sub.root)
            sub.clause = sub.clause.join(unit2, on2)
            sub.root, sub.ledger, sub.link, sub.link_hop = far2, h.far, link2, h
            sub.joins = {(): (far2, link2)}
        return sub


__all__ = ["ATTRIBUTE", "BASE_FIELDS", "From", "Hop", "PathError", "PathRef", "hop", "parse", "policy_of"]
