"""Review by the owning department: return with comments (task- and cell-level), or approve."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import FieldError, invalid
from app.report.common import bad_state, now, transition
from app.report.models import ReportComment, ReportRow
from app.report.tasks.access import reviewable_task
from app.report.tasks.rows import task_head


async def return_task(
    session: AsyncSession, principal: Principal, task_id: int, *, comment: str, cells: list[dict]
) -> dict:
    task, version, template = await reviewable_task(session, principal, task_id)
    if task.state != "submitted":
        raise bad_state(task.state, "退回")
    if not comment.strip():
        raise invalid([FieldError("body.comment", "report.comment_required", "退回须填写意见")])
    keys = {c.get("row") for c in cells}
    known = (
        set(
            (
                await session.scalars(
                    select(ReportRow.row_key).where(
                        ReportRow.task_id == task.id, ReportRow.row_key.in_([str(k) for k in keys])
                    )
                )
            ).all()
        )
        if keys
        else set()
    )
    bad = [
        FieldError(f"body.cells.{i}.row", "cell.row_unknown", "该行不存在")
        for i, c in enumerate(cells)
        if str(c.get("row")) not in known
    ]
    if bad:
        raise invalid(bad)
    session.add(
        ReportComment(task_id=task.id, body=comment.strip(), author=principal.actor, created_at=now())
    )
    for c in cells:
        session.add(
            ReportComment(
                task_id=task.id,
                row_key=str(c["row"]),
                column=c.get("column"),
                body=str(c.get("comment") or comment).strip(),
                author=principal.actor,
                created_at=now(),
            )
        )
    task.state = "returned"
    transition(
        session, actor=principal.actor, frm="submitted", to="returned", task_id=task.id, note=comment[:500]
    )
    await session.flush()
    return task_head(task, template, version)


async def approve_task(
    session: AsyncSession, principal: Principal, task_id: int, *, comment: str | None
) -> dict:
    task, version, template = await reviewable_task(session, principal, task_id)
    if task.state != "submitted":
        raise bad_state(task.state, "审核通过")
    if comment and comment.strip():
        session.add(
            ReportComment(task_id=task.id, body=comment.strip(), author=principal.actor, created_at=now())
        )
    task.state, task.approved_at = "approved", now()
    transition(
        session,
        actor=principal.actor,
        frm="submitted",
        to="approved",
        task_id=task.id,
        note=(comment or None) and comment[:500],
    )
    await session.flush()
    return task_head(task, template, version)
