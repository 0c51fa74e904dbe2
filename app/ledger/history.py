"""Change history: one row per changed field (record, field, before, after, source, actor, time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    insert,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from app.access.policy import LedgerPolicy
from app.auth.principal import Principal
from app.db.ledger_tables import tables
from app.query import sources
from app.requests import request_id_var


def jsonable(value: object) -> object:
    """History keeps values as JSON scalars; dates and decimals as their canonical text."""
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def source_of(principal: Principal) -> str:
    """Where a value came from, in the catalogue's terms (township entry, a department's system …)."""
    if principal.kind == "service_account":
        return f"system:{principal.name}"
    if principal.org_unit_kind == "department":
        return f"department:{principal.department_code}"
    if principal.org_unit_kind in ("township", "village"):
        return f"township:{principal.region_code}"
    return principal.org_unit_kind


async def record_changes(
    session: AsyncSession,
    *,
    ledger: str,
    record_id: int,
    region_code: str,
    op: str,
    changes: Sequence[tuple[str | None, object, object]],
    principal: Principal,
    source: str,
) -> None:
    if not changes:
        return
    rid = request_id_var.get()
    await session.execute(
        insert(tables().history),
        [
            {
                "ledger": ledger,
                "record_id": record_id,
                "region_code": region_code,
                "op": op,
                "field": fld,
                "before": jsonable(before),
                "after": jsonable(after),
                "source": source,
                "actor": principal.actor,
                "request_id": rid,
            }
            for fld, before, after in changes
        ],
    )


LINK_OPS = ("link", "unlink")


def history_select(
    policy: LedgerPolicy,
    record_id: int,
    limit: int,
    before_id: int | None,
    links: dict[str, LedgerPolicy] | None = None,
) -> Select[Any]:
    """History rows of one record, with before/after masked in SQL exactly as the field itself.

    links: relation name (person.residence) -> the policy of the ledger at its other end. A link
    change shows only when that other record is visible to the reader, as in related records."""
    h = sources.history_table()
    t = sources.ledger_table(policy)
    # A `full`-masked field's rows would tell when it got a value (who became disabled): not shown.
    visible = [fa.field.code for fa in policy.visible() if policy.discloses_presence(fa.field.code)]
    visible.append("region_code")
    is_link = h.c.op.in_(LINK_OPS)

    def masked(col: ColumnElement[Any]) -> ColumnElement[Any]:
        as_text = col.op("#>>")(literal_column("'{}'"))
        whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = [
            (is_link, as_text)
        ]  # the other record's id
        for code in visible:
            expr = policy.mask_history_value(code, as_text) if code != "region_code" else as_text
            if expr is not None:  # None: hidden; ELSE gives NULL as well
                whens.append((h.c.field == code, expr))
        return case(*whens, else_=null().cast(Text))

    def far_visible(far: LedgerPolicy) -> ColumnElement[bool]:
        value = case((h.c.op == "link", h.c.after), else_=h.c.before)  # JSON null is not SQL NULL
        other = cast(value.op("#>>")(literal_column("'{}'")), BigInteger)
        return exists().where(sources.ledger_table(far).c.id == other, far.scope_clause(include_deleted=True))

    # CASE, not AND: the id cast must only run on link rows.
    link_ok = (
        case(*[(h.c.field == name, far_visible(far)) for name, far in (links or {}).items()], else_=false())
        if links
        else false()
    )
    stmt = (
        select(
            h.c.id,
            h.c.op,
            h.c.field,
            masked(h.c.before).label("before"),
            masked(h.c.after).label("after"),
            h.c.source,
            h.c.actor,
            h.c.at,
        )
        .join(t, and_(t.c.id == h.c.record_id))
        .where(
            h.c.ledger == policy.ledger.code,
            h.c.record_id == record_id,
            policy.scope_clause(include_deleted=True),
            or_(~is_link & (h.c.field.in_(visible) | h.c.field.is_(None)), is_link & link_ok),
        )
        .order_by(h.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        stmt = stmt.where(h.c.id < before_id)
    return stmt
