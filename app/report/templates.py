"""Template definitions: create, new versions, read. Owned by the department of the author."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import FieldError, Problem
from app.org.regions import region_prefix
from app.report import rules
from app.report.common import department_unit, is_department, latest_version, transition
from app.report.compiler import compile_template, department_policies, department_principal
from app.report.dsl import TemplateSpec, parse_spec
from app.report.models import ReportTemplate, ReportTemplateVersion, ReportTransition


async def _validate(session: AsyncSession, unit, spec: TemplateSpec) -> None:
    """Structural and catalogue checks now (422 naming the path); missing grants are admission's business."""
    policies = await department_policies(session, department_principal(unit))
    compiled = compile_template(spec, policies, region_prefix(unit.region_code), strict=False)
    rules.check_definition(spec, compiled.columns)  # required_when and row rules: body.* paths


async def create_template(session: AsyncSession, principal: Principal, body: dict) -> dict:
    if not is_department(principal):
        raise Problem(403, "report.department_only", "只有条线部门可以定义报表模板")
    spec = parse_spec(body)
    from app.org.models import OrgUnit

    unit = await session.get(OrgUnit, principal.org_unit_id)
    assert unit is not None  # a principal's unit exists (foreign key)
    await _validate(session, unit, spec)
    t = ReportTemplate(
        department_code=principal.department_code,
        org_unit_id=unit.id,
        code=spec.code,
        name=spec.name,
        latest_version=1,
        created_by=principal.actor,
    )
    try:
        async with session.begin_nested():
            session.add(t)
            await session.flush()
    except IntegrityError:
        raise Problem(
            409,
            "report.template_duplicate",
            "本部门已有相同代码的报表模板",
            errors=[FieldError("body.code", "report.template_duplicate", "代码已被使用")],
        ) from None
    v = ReportTemplateVersion(
        template_id=t.id,
        version=1,
        spec=spec.model_dump(mode="json", exclude_none=True),
        state="draft",
        pull_only=spec.pull_only,
        created_by=principal.actor,
    )
    session.add(v)
    await session.flush()
    transition(session, actor=principal.actor, frm=None, to="draft", version_id=v.id)
    return await template_view(session, t)


async def new_version(session: AsyncSession, principal: Principal, t: ReportTemplate, body: dict) -> dict:
    """Edit a draft in place; any submitted / decided version stays frozen and a new one is started."""
    spec = parse_spec(body)
    if spec.code != t.code:
        raise Problem(
            422,
            "validation.failed",
            "模板代码不可修改",
            errors=[FieldError("body.code", "report.code_immutable", "模板代码不可修改")],
        )
    await _validate(session, await department_unit(session, t), spec)
    latest = await latest_version(session, t)
    dumped = spec.model_dump(mode="json", exclude_none=True)
    if latest is not None and latest.state == "draft":
        latest.spec, latest.pull_only = dumped, spec.pull_only
    else:
        t.latest_version += 1
        v = ReportTemplateVersion(
            template_id=t.id,
            version=t.latest_version,
            spec=dumped,
            state="draft",
            pull_only=spec.pull_only,
            created_by=principal.actor,
        )
        session.add(v)
        await session.flush()
        transition(session, actor=principal.actor, frm=None, to="draft", version_id=v.id)
    t.name = spec.name
    await session.flush()
    return await template_view(session, t)


def version_view(v: ReportTemplateVersion) -> dict:
    return {
        "version": v.version,
        "state": v.state,
        "pull_only": v.pull_only,
        "reason": v.reason,
        "created_by": v.created_by,
        "created_at": v.created_at,
        "submitted_at": v.submitted_at,
        "decided_at": v.decided_at,
        "decided_by": v.decided_by,
    }


async def template_view(session: AsyncSession, t: ReportTemplate) -> dict:
    versions = (
        await session.scalars(
            select(ReportTemplateVersion)
            .where(ReportTemplateVersion.template_id == t.id)
            .order_by(ReportTemplateVersion.version)
        )
    ).all()
    latest = versions[-1]
    ids = [v.id for v in versions]
    trans = (
        await session.scalars(
            select(ReportTransition).where(ReportTransition.version_id.in_(ids)).order_by(ReportTransition.id)
        )
    ).all()
    by_id = {v.id: v.version for v in versions}
    approved = [v for v in versions if v.state == "approved"]
    return {
        "id": t.id,
        "code": t.code,
        "name": t.name,
        "department_code": t.department_code,
        "latest_version": latest.version,
        "state": latest.state,
        "pull_only": latest.pull_only,
        "active_version": approved[-1].version if approved else None,
        "spec": latest.spec,
        "analysis": latest.analysis,
        "versions": [version_view(v) for v in versions],
        "transitions": [
            {
                "version": by_id[tr.version_id] if tr.version_id is not None else None,
                "from": tr.from_state,
                "to": tr.to_state,
                "actor": tr.actor,
                "at": tr.at,
                "note": tr.note,
            }
            for tr in trans
        ],
    }


async def list_templates(session: AsyncSession, principal: Principal) -> list[dict]:
    stmt = select(ReportTemplate).order_by(ReportTemplate.id)
    if not principal.is_platform_admin:
        stmt = stmt.where(ReportTemplate.department_code == (principal.department_code or ""))
    out = []
    for t in (await session.scalars(stmt)).all():
        v = await latest_version(session, t)
        assert v is not None  # a template is created with its first version
        out.append(
            {
                "id": t.id,
                "code": t.code,
                "name": t.name,
                "department_code": t.department_code,
                "latest_version": v.version,
                "state": v.state,
                "pull_only": v.pull_only,
            }
        )
    return out
