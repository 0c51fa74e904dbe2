"""Moving a record to another area (a new region_code): who may, and what moves with it.

region_code decides which township reads and writes a row, so a move is a write on the whole record in
both areas, not a change of one field. A record's extension rows and the links it is the source of live
in its area too (catalogue: an extension row lives where its subject lives, a link row in its source's
township): they move in the same transaction, or the old area would keep reading them.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.audit import append
from app.access.policy import LedgerPolicy
from app.auth.principal import Principal
from app.catalog.loader import get_catalog
from app.db.ledger_tables import tables
from app.errors import FieldError, Problem
from app.ledger.history import record_changes


def check_move(policy: LedgerPolicy, new_region: str, path: str = "body.region_code") -> None:
    """The caller must write the record where it is (the row was found through its scope, and it may
    write it) and where it goes. Read or masked access never moves anything."""
    if not policy.can_write_any():
        raise Problem(
            403,
            "access.record_readonly",
            "无权迁移该记录",
            errors=[FieldError(path, "access.record_readonly", "无修改该记录的权限")],
        )
    policy.check_region_writable(new_region, path)


async def move_dependents(
    session: AsyncSession,
    principal: Principal,
    ledger: str,
    record_id: int,
    old_region: str,
    new_region: str,
    *,
    source: str,
) -> None:
    """Move the extension rows and source-side links of a record along with it; history and audit."""
    catalog = get_catalog()
    subject = {"ledger": ledger, "id": record_id}
    for ext in catalog.extensions_of(ledger):
        t = tables().ledgers[ext.code]
        # Soft-deleted rows too: their history is read through the row's own region.
        rows = (
            await session.execute(
                select(t.c.id, t.c.region_code)
                .where(t.c.parent_id == record_id, t.c.region_code != new_region)
                .order_by(t.c.id)
                .with_for_update()
            )
        ).all()
        if not rows:
            continue
        await session.execute(
            update(t)
            .where(t.c.id.in_([r.id for r in rows]))
            .values(region_code=new_region, version=t.c.version + 1, updated_at=func.now())
        )
        for r in rows:
            await record_changes(
                session,
                ledger=ext.code,
                record_id=r.id,
                region_code=new_region,
                op="update",
                changes=[("region_code", r.region_code, new_region)],
                principal=principal,
                source=source,
            )
        await append(
            session,
            actor=principal.actor,
            action="move",
            path="rest",
            ledger=ext.code,
            record_ids=[r.id for r in rows],
            fields=["region_code"],
            detail={"from": old_region, "to": new_region, "with": subject},
        )
    for rel, direction in catalog.relations_of(ledger):
        if direction != "forward":
            continue  # a link lives with its source: the other end moving does not move it
        link = tables().relations[rel.code]
        moved = (
            (
                await session.execute(
                    update(link)
                    .where(link.c.from_id == record_id, link.c.region_code != new_region)
                    .values(region_code=new_region)
                    .returning(link.c.id)
                )
            )
            .scalars()
            .all()
        )
        if moved:
            await append(
                session,
                actor=principal.actor,
                action="move",
                path="rest",
                ledger=ledger,
                record_ids=[record_id],
                fields=["region_code"],
                detail={
                    "from": old_region,
                    "to": new_region,
                    "relation": rel.code,
                    "link_ids": sorted(moved),
                },
            )
