"""The change feed: what department pushes changed in the reader's area, newest last, by cursor.

Read through the reader's LedgerPolicy like a record's history: rows only of records in the reader's
scope, values masked as the field itself, fields the reader may not see (or whose presence a `full`
mask hides) left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, case, literal_column, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.audit import audit_read
from app.access.policy import policy_for
from app.auth.principal import Principal
from app.catalog.model import Catalog
from app.org.regions import region_prefix
from app.push.apply import source_label
from app.query import sources

PUSHED = "department:%/%"  # history source of a pushed value: department:<code>/<event id>


def _label(catalog: Catalog, source: str) -> str:
    dept, _, event = source.removeprefix("department:").partition("/")
    return source_label(catalog, dept, event)


async def changes(
    session: AsyncSession,
    principal: Principal,
    catalog: Catalog,
    *,
    ledger: str,
    since: int,
    limit: int,
    source: str | None,
    region: str | None,
) -> dict[str, Any]:
    policy = await policy_for(session, principal, ledger)
    h = sources.history_table()
    t = sources.ledger_table(policy)
    visible = [fa.field.code for fa in policy.visible() if policy.discloses_presence(fa.field.code)]

    def masked(col: Any) -> Any:
        as_text = col.op("#>>")(literal_column("'{}'"))
        whens = [(h.c.field == code, policy.mask_history_value(code, as_text)) for code in visible]
        return case(*whens, else_=null().cast(Text)) if whens else null().cast(Text)

    stmt = (
        select(
            h.c.id,
            h.c.record_id,
            t.c.region_code,
            h.c.op,
            h.c.field,
            masked(h.c.before).label("before"),
            masked(h.c.after).label("after"),
            h.c.source,
            h.c.at,
        )
        .join(t, t.c.id == h.c.record_id)
        .where(
            h.c.ledger == ledger,
            h.c.id > since,
            h.c.source.like(PUSHED),
            policy.scope_clause(include_deleted=True),
            or_(h.c.field.in_(visible or [""]), h.c.field.is_(None)),
        )
        .order_by(h.c.id)
        .limit(limit + 1)
    )
    if source:
        stmt = stmt.where(h.c.source.like(f"department:{source}/%"))
    if region:
        stmt = stmt.where(t.c.region_code.like(region_prefix(region) + "%"))
    rows = (await session.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for r in rows:
        dept, _, event = r.source.removeprefix("department:").partition("/")
        items.append(
            {
                "id": r.id,
                "record_id": r.record_id,
                "region_code": r.region_code,
                "op": r.op,
                "field": r.field,
                "before": r.before,
                "after": r.after,
                "source": dept,
                "source_event_id": event,
                "source_label": _label(catalog, r.source),
                "at": r.at,
            }
        )
    await audit_read(
        session,
        policy,
        sorted({r.record_id for r in rows}),
        "push.changes",
        fields=[r.field for r in rows if r.field],
    )
    return {"items": items, "next_since": rows[-1].id if rows else since, "more": more}
