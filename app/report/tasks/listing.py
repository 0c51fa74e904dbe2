"""Task lists: townships see their own tasks, departments the tasks of their templates (row counts only
where their scope holds the whole township), platform admins all.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.report.compiler import department_policies
from app.report.models import ReportTask, ReportTemplate
from app.report.reader import holds_township
from app.report.tasks.access import listing_scope
from app.report.tasks.rows import task_head


async def list_tasks(
    session: AsyncSession,
    principal: Principal,
    *,
    period: str | None,
    state: str | None,
    template_id: int | None,
) -> list[dict]:
    """Townships see their own tasks; departments the tasks of their templates; platform admins all."""
    from app.report.common import is_township
    from app.report.models import ReportTemplateVersion as V

    stmt = (
        select(ReportTask, V, ReportTemplate)
        .join(V, V.id == ReportTask.version_id)
        .join(ReportTemplate, ReportTemplate.id == V.template_id)
    )
    stmt = listing_scope(stmt, principal)
    if period:
        stmt = stmt.where(ReportTask.period == period)
    if template_id:
        stmt = stmt.where(ReportTemplate.id == template_id)
    if state == "overdue":
        from app.report.common import today

        stmt = stmt.where(ReportTask.state.not_in(["submitted", "approved"]), ReportTask.deadline < today())
    elif state:
        stmt = stmt.where(ReportTask.state == state)
    rows = (
        (await session.execute(stmt.order_by(ReportTask.deadline, ReportTask.id).limit(1000))).tuples().all()
    )
    if not is_township(principal):
        # A task's row count is a count of the township's records: listed only to readers whose scope
        # of the template's ledger holds the whole township (townships list their own tasks).
        policies = await department_policies(session, principal)
        rows = [
            (t, v, tpl)
            for t, v, tpl in rows
            if holds_township(policies[v.spec["ledger"]].scope, t.township_code)
        ]
    return [task_head(t, tpl, v) for t, v, tpl in rows]
