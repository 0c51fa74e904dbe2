"""Write-back at submit: typed values of write-back gaps go into their ledger fields through the records
service, with the submitting township's own grants and provenance report:task:<id>.
"""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.policy import policy_for
from app.auth.principal import Principal
from app.report.compiler import OutColumn
from app.report.models import ReportCell, ReportRow, ReportTask


async def write_back(
    session: AsyncSession, principal: Principal, task: ReportTask, cols: list[OutColumn]
) -> int:
    """Typed values of write-back gaps go into their ledger fields, with provenance = this task.

    Through the ledger service with the submitting township's own principal: its grants decide, and
    history records the change like any other edit. Unchanged values are no-ops there.
    """
    from app.ledger.service import update_record

    wb = {c.code: c.write_back for c in cols if c.write_back}
    if not wb:
        return 0
    r, c = ReportRow.__table__, ReportCell.__table__
    rows = (
        await session.execute(
            select(r.c.row_key, r.c.row_no, r.c.links, c.c.column, c.c.value)
            .join(c, and_(c.c.task_id == r.c.task_id, c.c.row_key == r.c.row_key))
            .where(r.c.task_id == task.id, c.c.column.in_(list(wb)), c.c.origin != "prefill")
            .order_by(r.c.row_no)
        )
    ).all()
    per_record: dict[tuple[str, int], dict] = {}
    for row in rows:
        ledger, fld = wb[row.column]
        rid = (row.links or {}).get(row.column)
        if rid is None:
            continue  # no linked record (e.g. no extension row yet): nothing to write into
        per_record.setdefault((ledger, int(rid)), {})[fld] = row.value
    source = f"report:task:{task.id}"
    n = 0
    for ledger in sorted({lg for lg, _ in per_record}):
        policy = await policy_for(session, principal, ledger)  # even ids and versions are read in scope
        t = policy.table
        ids = [rid for lg, rid in per_record if lg == ledger]
        versions: dict[int, int] = dict(
            (await session.execute(select(t.c.id, t.c.version).where(t.c.id.in_(ids), policy.scope_clause())))
            .tuples()
            .all()
        )
        for rid in ids:
            if rid not in versions:
                continue
            body = {**per_record[(ledger, rid)], "version": versions[rid]}
            await update_record(session, principal, ledger, rid, body, None, source=source)
            n += 1
    return n
