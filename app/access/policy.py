"""The one access policy: (principal, ledger) -> field levels, masks and row scope, compiled into SQL.

Every path that returns or changes ledger data (REST, GraphQL, report pre-fill, exports, history)
asks `policy_for` and uses the returned LedgerPolicy to build its statement. Nothing else decides.

Resolution (docs/access.md): among grants matching the principal, the most specific grantee wins
(user / service account > role within org unit > org unit > role anywhere), then a grant naming the
field beats a "*" grant, then a grant naming the ledger beats a "*" ledger; ties go to the newest grant.
No matching grant: users get the field's sensitivity default, service accounts get nothing. Service
accounts match only grants naming them: never their org unit's or a role's.

Then derived fields (catalogue `derived_from`: the birth date inside the ID number, a certificate
embedding it, a house owner's ID number) are capped at the level of every field they reveal, resolved
from the same grants, so no combination of readable values rebuilds a masked or hidden one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Column, Table, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from app.access.levels import DEFAULT_FOR_SENSITIVITY, Level
from app.access.masks import mask_column, mask_text
from app.access.models import Grant
from app.auth.principal import Principal
from app.catalog.loader import get_catalog
from app.catalog.model import Catalog, Field, Ledger, MaskRule, Relation, Sensitivity
from app.db.ledger_tables import tables
from app.errors import FieldError, Problem, not_found
from app.org.regions import region_prefix

# Columns every ledger row exposes to anyone who may see the row at all.
BASE_COLUMNS = ("id", "region_code", "version", "created_at", "updated_at")
# Base columns that may be filtered and sorted on.
BASE_FILTERABLE = {"id", "region_code", "created_at", "updated_at"}

_RANK = {"user": 4, "service_account": 4, "role_in_unit": 3, "org_unit": 2, "role": 1}
_RANK_ZH = {4: "本账号授权", 3: "本单位角色授权", 2: "本单位授权", 1: "角色授权"}


@dataclass(frozen=True)
class FieldAccess:
    field: Field
    level: Level
    allow_lookup: bool
    reason: str  # why: "grant 12 (本账号授权)" or "default: sensitive"
    grant_id: int | None = None

    @property
    def mask(self) -> MaskRule:
        return self.field.mask if self.field.mask != MaskRule.none else MaskRule.full


@dataclass(frozen=True)
class LedgerPolicy:
    principal: Principal
    ledger: Ledger
    table: Table
    fields: dict[str, FieldAccess]
    scope: tuple[str, ...]  # region_code prefixes; empty: no rows at all
    scope_reason: str
    scope_grant_id: int | None = None

    # ---- rows -------------------------------------------------------------------------------
    def scope_clause(
        self, table: FromClause | None = None, *, include_deleted: bool = False
    ) -> ColumnElement[Any]:
        t = table if table is not None else self.table
        if not self.scope:
            return false()
        clauses = [true() if p == "" else t.c.region_code.like(p + "%") for p in self.scope]
        scoped = or_(*clauses) if len(clauses) > 1 else clauses[0]
        return scoped if include_deleted else scoped & t.c.deleted_at.is_(None)

    def in_scope(self, region_code: str) -> bool:
        return any(region_code.startswith(p) for p in self.scope)

    # ---- columns ----------------------------------------------------------------------------
    def level(self, code: str) -> Level:
        if code in BASE_COLUMNS:
            return Level.read
        fa = self.fields.get(code)
        return fa.level if fa else Level.hidden

    def visible(self) -> list[FieldAccess]:
        return [fa for fa in self.fields.values() if fa.level >= Level.masked]

    def column(self, code: str, table: FromClause | None = None) -> ColumnElement[Any]:
        """The expression a reader gets for a field: raw, masked in SQL, or a 403 if hidden."""
        t = table if table is not None else self.table
        if code in BASE_COLUMNS:
            return t.c[code]
        fa = self.fields.get(code)
        if fa is None or fa.level == Level.hidden:
            raise _hidden(code, "field")
        if fa.level == Level.masked:
            return mask_column(fa.mask, t.c[code])
        return t.c[code]

    def select_columns(self, table: FromClause | None = None) -> list[ColumnElement[Any]]:
        t = table if table is not None else self.table
        cols: list[ColumnElement[Any]] = [t.c[c] for c in BASE_COLUMNS]
        if self.ledger.kind == "extension":
            cols.append(t.c.parent_id)
        cols += [self.column(fa.field.code, t).label(fa.field.code) for fa in self.visible()]
        return cols

    def discloses_presence(self, code: str) -> bool:
        """May the reader learn whether the field holds a value? Yes if it reads it or a partial mask
        shows part of it; not if hidden or masked `full`, whose provenance, flags and history rows
        would otherwise tell what the mask hides (who is disabled)."""
        fa = self.fields.get(code)
        if fa is None or fa.level == Level.hidden:
            return False
        return fa.level >= Level.read or fa.mask != MaskRule.full

    def mask_history_value(self, code: str, value_text: ColumnElement[Any]) -> ColumnElement[Any] | None:
        """History before/after text for a field, masked like the field itself; None if hidden."""
        fa = self.fields.get(code)
        if fa is None or fa.level == Level.hidden:
            return None
        if fa.level == Level.masked:
            return mask_text(fa.mask, value_text)
        return value_text

    # ---- what a caller may ask --------------------------------------------------------------
    def check_filter(self, code: str, op: str, path: str) -> Column[Any]:
        """The raw column to filter on, if allowed. Masked fields: exact lookup only, if granted."""
        if code in BASE_FILTERABLE:
            return self.table.c[code]
        fa = self.fields.get(code)
        if fa is None or fa.level == Level.hidden:
            raise _hidden(code, path)
        if fa.level == Level.masked and not (fa.allow_lookup and op in ("eq", "in")):
            raise Problem(
                403,
                "access.field_masked",
                "该字段已脱敏，不能按其筛选、排序或统计",
                errors=[FieldError(path, "access.field_masked", "脱敏字段仅在授权时可精确查找")],
            )
        return self.table.c[code]

    def check_sort(self, code: str, path: str) -> Column[Any]:
        """Sorting, grouping and aggregating need the plain value: read or better."""
        if code in BASE_FILTERABLE:
            return self.table.c[code]
        fa = self.fields.get(code)
        if fa is None or fa.level == Level.hidden:
            raise _hidden(code, path)
        if fa.level < Level.read:
            raise Problem(
                403,
                "access.field_masked",
                "该字段已脱敏，不能按其筛选、排序或统计",
                errors=[FieldError(path, "access.field_masked", "脱敏字段不能用于排序、分组或统计")],
            )
        return self.table.c[code]

    def check_write(self, codes: list[str], path_prefix: str = "body") -> None:
        # Unknown names are left to validation (422 field.unknown); field names are public catalogue.
        denied = [c for c in codes if c in self.fields and self.level(c) < Level.write]
        if denied:
            raise Problem(
                403,
                "access.field_readonly",
                "无权修改以下字段",
                errors=[
                    FieldError(f"{path_prefix}.{c}", "access.field_readonly", "无修改权限") for c in denied
                ],
            )

    def check_region_writable(self, region_code: str, path: str) -> None:
        if not self.in_scope(region_code):
            raise Problem(
                403,
                "access.region_out_of_scope",
                "所选区划不在您的管辖范围内",
                errors=[FieldError(path, "access.region_out_of_scope", "区划超出管辖范围")],
            )

    def can_write_any(self) -> bool:
        return any(fa.level == Level.write for fa in self.fields.values())

    @property
    def plain_sensitive_fields(self) -> list[str]:
        """Fields whose unmasked value this policy returns although they are sensitive or secret: reads
        of them are audited (REST, GraphQL, report pre-fill)."""
        return [
            fa.field.code
            for fa in self.fields.values()
            if fa.level >= Level.read and fa.field.sensitivity in (Sensitivity.sensitive, Sensitivity.secret)
        ]


def link_attribute_level(f: Field) -> Level:
    """Link attributes carry no grants of their own: one a user would read by default reads, any other is
    hidden (REST `related`, GraphQL link types and report paths alike)."""
    return Level.read if DEFAULT_FOR_SENSITIVITY[f.sensitivity] >= Level.read else Level.hidden


@dataclass(frozen=True)
class LinkPolicy:
    """The policy of a relation's link rows, as far as their attributes go (LedgerPolicy's field checks).

    Which link rows exist is decided by the ledger policies of both ends: a link is reached only from a
    record the reader sees, to a record the reader sees."""

    relation: Relation

    def level(self, code: str) -> Level:
        f = next((a for a in self.relation.attributes if a.code == code), None)
        return Level.hidden if f is None else link_attribute_level(f)

    def column(self, code: str, table: FromClause) -> ColumnElement[Any]:
        if self.level(code) < Level.read:
            raise _hidden(code, "field")
        return table.c[code]

    def check_filter(self, code: str, op: str, path: str) -> None:
        self.check_sort(code, path)

    def check_sort(self, code: str, path: str) -> None:
        """Readable attributes may be filtered, grouped and aggregated; there is no masked level."""
        if self.level(code) < Level.read:
            raise _hidden(code, path)


def _hidden(code: str, path: str) -> Problem:
    # Same answer whether the field is hidden or unknown: hidden names are not confirmed.
    return Problem(
        403,
        "access.field_hidden",
        "无权访问该字段",
        errors=[FieldError(path, "access.field_hidden", "字段不存在或无权访问")],
    )


# ---- resolution ---------------------------------------------------------------------------------


def _grantee_rank(g: Grant, p: Principal) -> int | None:
    match g.grantee_type:
        case "user":
            return _RANK["user"] if p.kind == "user" and g.user_id == p.id else None
        case "service_account":
            ok = p.kind == "service_account" and g.service_account_id == p.id
            return _RANK["service_account"] if ok else None
        case "org_unit":
            # Service accounts get what is granted to them by name, nothing of their unit's (docs/access.md).
            return _RANK["org_unit"] if p.kind == "user" and g.org_unit_id == p.org_unit_id else None
        case "role":
            if p.kind != "user" or g.role not in p.roles:
                return None
            if g.org_unit_id is None:
                return _RANK["role"]
            return _RANK["role_in_unit"] if g.org_unit_id == p.org_unit_id else None
    return None


def grants_key(principal: Principal) -> tuple[str, str, int]:
    """Where grants_for keeps a principal's grants in session.info."""
    return ("access_grants", principal.kind, principal.id)


async def grants_for(session: AsyncSession, principal: Principal) -> list[tuple[int, Grant]]:
    """All grants that apply to a principal, with their grantee rank; cached on the session."""
    key = grants_key(principal)
    cached: list[tuple[int, Grant]] | None = session.info.get(key)
    if cached is not None:
        return cached
    user = principal.kind == "user"
    stmt = select(Grant).where(
        or_(
            (Grant.grantee_type == "user") & (Grant.user_id == principal.id) if user else false(),
            (Grant.grantee_type == "service_account") & (Grant.service_account_id == principal.id)
            if principal.kind == "service_account"
            else false(),
            (Grant.grantee_type == "org_unit") & (Grant.org_unit_id == principal.org_unit_id)
            if user
            else false(),
            (Grant.grantee_type == "role") & Grant.role.in_(sorted(principal.roles or {"-"}))
            if user
            else false(),
        )
    )
    rows = (await session.scalars(stmt)).all()
    # Cached as detached copies: ORM objects would expire on the session's next commit or rollback.
    out = [(r, _snapshot(g)) for g in rows if (r := _grantee_rank(g, principal)) is not None]
    session.info[key] = out
    return out


def _snapshot(g: Grant) -> Grant:
    return Grant(**{c.key: getattr(g, c.key) for c in Grant.__table__.columns})


def _best(candidates: list[tuple[int, Grant]]) -> tuple[int, Grant] | None:
    return max(
        candidates,
        key=lambda rg: (rg[0], rg[1].field != "*", rg[1].ledger != "*", rg[1].id or 0),
        default=None,
    )


def _granted(principal: Principal, ledger: Ledger, grants: list[tuple[int, Grant]]) -> dict[str, FieldAccess]:
    """Each field's level from the grants and defaults alone, before derived fields are capped."""
    relevant = [(r, g) for r, g in grants if g.ledger in (ledger.code, "*")]
    fields: dict[str, FieldAccess] = {}
    for f in ledger.fields:
        hit = _best([(r, g) for r, g in relevant if g.field in (f.code, "*")])
        if hit is not None:
            r, g = hit
            fields[f.code] = FieldAccess(
                f, Level.parse(g.level), g.allow_lookup, f"grant {g.id}（{_RANK_ZH[r]}）", g.id
            )
        elif principal.kind == "user":
            fields[f.code] = FieldAccess(
                f, DEFAULT_FOR_SENSITIVITY[f.sensitivity], False, f"default: {f.sensitivity.value}"
            )
        else:
            fields[f.code] = FieldAccess(f, Level.hidden, False, "default: service accounts need a grant")
    return fields


class _Derivations:
    """Caps derived fields at the level of every field they reveal, across ledgers, from one grant set.

    A capped field keeps its own mask rule (the birth date shows its year, a certificate its ID part)
    and loses `allow_lookup`: an exact lookup on it would probe the value the cap protects. The
    catalogue loader refuses unknown references and cycles, so following the links ends."""

    def __init__(self, principal: Principal, grants: list[tuple[int, Grant]], catalog: Catalog):
        self.principal, self.grants, self.catalog = principal, grants, catalog
        self.granted: dict[str, dict[str, FieldAccess]] = {}
        self.done: dict[str, FieldAccess] = {}

    def own(self, ledger_code: str) -> dict[str, FieldAccess]:
        got = self.granted.get(ledger_code)
        if got is None:
            ledger = self.catalog.ledgers[ledger_code]
            got = self.granted[ledger_code] = _granted(self.principal, ledger, self.grants)
        return got

    def effective(self, ref: str) -> FieldAccess:
        got = self.done.get(ref)
        if got is not None:
            return got
        lg_code, _, code = ref.partition(".")
        fa = self.own(lg_code)[code]
        if fa.field.derived_from:
            capped_by = [(self.effective(src).level, src) for src in fa.field.derived_from]
            cap = min(level for level, _ in capped_by)
            if cap < fa.level:
                by = ", ".join(src for level, src in capped_by if level == cap)
                fa = replace(fa, level=cap, allow_lookup=False, reason=f"{fa.reason}; capped by {by}")
        self.done[ref] = fa
        return fa


def resolve(
    principal: Principal, ledger: Ledger, grants: list[tuple[int, Grant]], catalog: Catalog | None = None
) -> LedgerPolicy:
    """Pure resolution (no I/O), so it can be property-tested directly."""
    cat = catalog or get_catalog()
    derivations = _Derivations(principal, grants, cat)
    derivations.granted[ledger.code] = _granted(principal, ledger, grants)
    fields = {f.code: derivations.effective(f"{ledger.code}.{f.code}") for f in ledger.fields}

    relevant = [(r, g) for r, g in grants if g.ledger in (ledger.code, "*")]
    scope_hit = _best([(r, g) for r, g in relevant if g.level != "hidden"])
    if scope_hit is not None:
        g = scope_hit[1]
        scope, reason, gid = _scope_of(g, principal), f"grant {g.id}", g.id
    elif principal.kind == "user":
        scope, reason, gid = (principal.region_prefix,), "default: own org subtree", None
    else:
        scope, reason, gid = (), "default: service accounts need a grant", None
    return LedgerPolicy(principal, ledger, tables().ledgers[ledger.code], fields, scope, reason, gid)


def _scope_of(g: Grant, p: Principal) -> tuple[str, ...]:
    if g.row_scope == "all":
        return ("",)
    if g.row_scope == "regions":
        return tuple(sorted({region_prefix(c) for c in (g.regions or [])}))
    return (p.region_prefix,)


async def policy_for(session: AsyncSession, principal: Principal, ledger_code: str) -> LedgerPolicy:
    ledger = get_catalog().ledger(ledger_code)
    if ledger is None:
        raise Problem(404, "ledger.not_found", "台账不存在")
    return resolve(principal, ledger, await grants_for(session, principal))


__all__ = [
    "FieldAccess",
    "LedgerPolicy",
    "LinkPolicy",
    "grants_for",
    "grants_key",
    "link_attribute_level",
    "not_found",
    "policy_for",
    "resolve",
]
