"""The review queue as a reviewer sees it: candidates in its area, both sides read through its own
LedgerPolicy (masked fields stay masked, hidden ones are absent), incoming values masked the same
way."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.audit import audit_read
from app.access.levels import Level
from app.access.masks import mask_text
from app.access.policy import LedgerPolicy, policy_for
from app.auth.principal import Principal
from app.dedupe.candidates import QUEUE
from app.dedupe.models import DedupeCandidate
from app.ledger.history import jsonable
from app.query import sources


async def _masked_incoming(
    session: AsyncSession, policy: LedgerPolicy, incoming: dict[str, Any] | None
) -> dict[str, Any] | None:
    if incoming is None:
        return None
    out: dict[str, Any] = {}
    masked: dict[str, Any] = {}
    for code, value in incoming.items():
        fa = policy.fields.get(code)
        if fa is None or fa.level == Level.hidden:
            continue
        if fa.level == Level.masked:
            masked[code] = mask_text(fa.mask, literal(str(value), Text)).label(code)
        else:
            out[code] = value
    if masked:  # masked in PostgreSQL by the same expressions as ledger columns
        row = (await session.execute(select(*masked.values()))).one()
        out.update(dict(row._mapping))
    return out


async def list_candidates(
    session: AsyncSession,
    principal: Principal,
    ledger: str,
    *,
    status: str,
    batch_id: int | None,
    limit: int,
    after: int | None,
) -> dict[str, Any]:
    policy = await policy_for(session, principal, ledger)
    c = QUEUE.c
    stmt = select(DedupeCandidate).where(
        c.ledger == ledger,
        c.status == status,
        policy.scope_clause(QUEUE, include_deleted=True),
    )
    if batch_id is not None:
        stmt = stmt.where(c.batch_id == batch_id)
    if after is not None:
        stmt = stmt.where(c.id > after)
    cands = list((await session.execute(stmt.order_by(c.id).limit(limit + 1))).scalars())
    more = len(cands) > limit
    cands = cands[:limit]
    ids = sorted({i for x in cands for i in (x.record_id, x.other_id) if i is not None})
    t: Any = sources.ledger_table(policy)
    records: dict[int, dict[str, Any]] = {}
    if ids:
        rows = (
            await session.execute(
                select(*policy.select_columns(t)).where(t.c.id.in_(ids), policy.scope_clause(t))
            )
        ).all()
        records = {r.id: {k: jsonable(v) for k, v in r._mapping.items()} for r in rows}
        await audit_read(session, policy, sorted(records), "rest")
    items = []
    for x in cands:
        items.append(
            {
                "id": x.id,
                "ledger": x.ledger,
                "status": x.status,
                "score": x.score,
                "reasons": x.reasons,
                "source": x.source,
                "batch_id": x.batch_id,
                "row_index": x.row_index,
                "record_id": x.record_id,
                "other_id": x.other_id,
                "record": records.get(x.record_id),
                "other": records.get(x.other_id) if x.other_id is not None else None,
                "incoming": await _masked_incoming(session, policy, x.incoming),
                "created_at": x.created_at.isoformat() if x.created_at else None,
            }
        )
    return {"items": items, "next_after": cands[-1].id if more and cands else None, "limit": limit}
