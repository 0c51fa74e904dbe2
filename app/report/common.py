"""Shared lookups and rules of the report module: who may see a template or task, transitions, clocks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import Problem, not_found
from app.org.models import OrgUnit
from app.report.dsl import TemplateSpec
from app.report.models import ReportTask, ReportTemplate, ReportTemplateVersion, ReportTransition

CHINA = ZoneInfo("Asia/Shanghai")
DEPT_ROLES = {"dept_admin", "dept_staff"}
TOWNSHIP_KINDS = {"township", "village"}
EDITABLE = {"dispatched", "in_progress", "returned"}
STATE_ZH = {
    "draft": "草稿",
    "submitted": "已提交",
    "approved": "已通过",
    "refused": "未准入",
    "dispatched": "已下派",
    "in_progress": "填报中",
    "returned": "已退回",
    "overdue": "已逾期",
}


def now() -> datetime:
    # Wall clock, not the transaction's now(): burden metrics measure time inside one session too.
    return datetime.now(UTC)


def today() -> date:
    return datetime.now(CHINA).date()


def is_department(p: Principal) -> bool:
    return p.org_unit_kind == "department" and bool(p.roles & DEPT_ROLES)


def is_township(p: Principal) -> bool:
    return p.org_unit_kind in TOWNSHIP_KINDS


def township_prefix(code: str) -> str:
    return code[:9]


async def department_unit(session: AsyncSession, template: ReportTemplate) -> OrgUnit:
    unit = await session.get(OrgUnit, template.org_unit_id)
    if unit is None:  # org units are never deleted while templates point at them (FK)
        raise not_found("部门")
    return unit


async def load_template(
    session: AsyncSession, principal: Principal, template_id: int, *, write: bool = False
) -> ReportTemplate:
    """A template the caller may see: its department, platform admins, and (read-only) townships once approved."""
    t = await session.get(ReportTemplate, template_id)
    if t is None:
        raise not_found("报表模板")
    own = is_department(principal) and principal.department_code == t.department_code
    if write and not own:
        if principal.is_platform_admin or (principal.department_code == t.department_code):
            raise Problem(403, "report.not_owner", "只有模板所属部门可以执行此操作")
        raise not_found("报表模板")
    if not (own or principal.is_platform_admin or principal.department_code == t.department_code):
        raise not_found("报表模板")
    return t


async def latest_version(
    session: AsyncSession, template: ReportTemplate, *, state: str | None = None
) -> ReportTemplateVersion | None:
    stmt = select(ReportTemplateVersion).where(ReportTemplateVersion.template_id == template.id)
    if state:
        stmt = stmt.where(ReportTemplateVersion.state == state)
    return (await session.scalars(stmt.order_by(ReportTemplateVersion.version.desc()).limit(1))).first()


def spec_of(version: ReportTemplateVersion) -> TemplateSpec:
    return TemplateSpec.model_validate(version.spec)


async def load_task(
    session: AsyncSession, principal: Principal, task_id: int
) -> tuple[ReportTask, ReportTemplateVersion, ReportTemplate]:
    """A task the caller may see: its township (and villages), the owning department, platform admins."""
    row = (
        await session.execute(
            select(ReportTask, ReportTemplateVersion, ReportTemplate)
            .join(ReportTemplateVersion, ReportTemplateVersion.id == ReportTask.version_id)
            .join(ReportTemplate, ReportTemplate.id == ReportTemplateVersion.template_id)
            .where(ReportTask.id == task_id)
        )
    ).first()
    if row is None:
        raise not_found("报表任务")
    task, version, template = row
    if not (
        in_township(principal, task)
        or principal.is_platform_admin
        or principal.department_code == template.department_code
    ):
        raise not_found("报表任务")
    return task, version, template


def in_township(principal: Principal, task: ReportTask) -> bool:
    """The task's township or one of its villages: may open the task (what it sees is cut to its grants)."""
    return is_township(principal) and principal.region_code[:9] == township_prefix(task.township_code)


def can_fill(principal: Principal, task: ReportTask) -> bool:
    """Filling (cells, upload, refresh, submit) is the township office's: its villages only read their rows."""
    return principal.org_unit_kind == "township" and in_township(principal, task)


def require_owner(principal: Principal, template: ReportTemplate) -> None:
    if not (is_department(principal) and principal.department_code == template.department_code):
        raise Problem(403, "report.not_owner", "只有模板所属部门可以执行此操作")


def transition(
    session: AsyncSession,
    *,
    actor: str,
    to: str,
    frm: str | None,
    task_id: int | None = None,
    version_id: int | None = None,
    note: str | None = None,
) -> None:
    session.add(
        ReportTransition(
            task_id=task_id,
            version_id=version_id,
            from_state=frm,
            to_state=to,
            actor=actor,
            note=note,
            at=now(),
        )
    )


def bad_state(current: str, action: str) -> Problem:
    return Problem(
        409,
        "report.bad_state",
        f"当前状态“{STATE_ZH.get(current, current)}”下不能{action}",
        extra={"state": current},
    )


def overdue(task: ReportTask) -> bool:
    return task.state not in ("submitted", "approved") and task.deadline < today()
