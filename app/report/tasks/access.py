"""Who may do what with a report task, in one place: every task operation starts here.

- read (open, download, list): the task's township (and its villages, their own rows), the owning
  department, platform admins; anyone else gets 404, as if the task did not exist;
- fill (save cells, upload, submit): the township office only, while the task is editable;
- refresh from the ledgers: the township office or the owning department, while editable;
- review (return, approve): the owning department.
Which rows and fields a reader then sees is the reader cut's business (app/report/reader.py).
"""

from __future__ import annotations

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import Problem
from app.report.common import EDITABLE, bad_state, can_fill, is_township, load_task, require_owner
from app.report.models import ReportTask, ReportTemplate, ReportTemplateVersion

Loaded = tuple[ReportTask, ReportTemplateVersion, ReportTemplate]


async def readable_task(session: AsyncSession, principal: Principal, task_id: int) -> Loaded:
    return await load_task(session, principal, task_id)


def require_filler(principal: Principal, task: ReportTask) -> None:
    if not can_fill(principal, task):
        raise Problem(403, "report.not_filler", "只有任务所属镇街可以填报")
    if task.state not in EDITABLE:
        raise bad_state(task.state, "修改")


async def fillable_task(session: AsyncSession, principal: Principal, task_id: int) -> Loaded:
    task, version, template = await load_task(session, principal, task_id)
    require_filler(principal, task)
    return task, version, template


async def refreshable_task(session: AsyncSession, principal: Principal, task_id: int) -> Loaded:
    task, version, template = await load_task(session, principal, task_id)
    if not (can_fill(principal, task) or principal.department_code == template.department_code):
        raise Problem(403, "report.not_filler", "只有任务所属镇街或模板所属部门可以刷新")
    if task.state not in EDITABLE:
        raise bad_state(task.state, "刷新")
    return task, version, template


async def reviewable_task(session: AsyncSession, principal: Principal, task_id: int) -> Loaded:
    task, version, template = await load_task(session, principal, task_id)
    require_owner(principal, template)
    return task, version, template


def listing_scope(stmt: Select, principal: Principal) -> Select:
    """Task lists: a township its own tasks, a department the tasks of its templates, admins all."""
    if is_township(principal):
        return stmt.where(ReportTask.township_code.like(principal.region_code[:9] + "%"))
    if not principal.is_platform_admin:
        return stmt.where(ReportTemplate.department_code == (principal.department_code or ""))
    return stmt


__all__ = [
    "fillable_task",
    "listing_scope",
    "readable_task",
    "refreshable_task",
    "require_filler",
    "reviewable_task",
]
