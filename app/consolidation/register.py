"""The legacy report register: record forms, propose their consolidation, retire them at go-live."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.loader import get_catalog
from app.consolidation.matching import Form, propose, pull_only_template
from app.consolidation.models import LegacyForm
from app.consolidation.schemas import FormIn
from app.errors import FieldError, Problem, invalid, not_found
from app.push.models import PushEvent
from app.report.models import ReportTemplate, ReportTemplateVersion

FREQUENCY_PER_YEAR = {
    "daily": 365,
    "weekly": 52,
    "monthly": 12,
    "quarterly": 4,
    "half_yearly": 2,
    "yearly": 1,
    "irregular": 0,
}


def _may_manage(principal: Principal) -> None:
    if not (principal.is_platform_admin or principal.org_unit_kind == "department"):
        raise Problem(403, "legacy.department_only", "只有条线部门或平台管理员可以维护报表清单")


def _department_of(principal: Principal, given: str | None) -> str:
    cat = get_catalog()
    dept = given or principal.department_code
    if dept is None:
        raise invalid([FieldError("body.department", "field.required", "须指定制发部门")])
    if dept not in cat.departments:
        raise invalid([FieldError("body.department", "catalog.department_unknown", "部门不在数据标准中")])
    if not principal.is_platform_admin and dept != principal.department_code:
        raise Problem(403, "legacy.not_own_department", "只能登记本部门制发的报表")
    return dept


async def register(session: AsyncSession, principal: Principal, body: FormIn) -> LegacyForm:
    _may_manage(principal)
    headers = [h.strip() for h in body.headers]
    if any(not h or len(h) > 100 for h in headers):
        raise invalid([FieldError("body.headers", "legacy.header", "表头不能为空，且不超过 100 个字符")])
    form = LegacyForm(
        name=body.name.strip(),
        department_code=_department_of(principal, body.department),
        frequency=body.frequency,
        level=body.level,
        headers=headers,
        state="active",
        created_by=principal.actor,
    )
    session.add(form)
    await session.flush()
    return form


async def list_forms(session: AsyncSession, *, state: str | None, department: str | None) -> list[LegacyForm]:
    stmt = select(LegacyForm).order_by(LegacyForm.id)
    if state:
        stmt = stmt.where(LegacyForm.state == state)
    if department:
        stmt = stmt.where(LegacyForm.department_code == department)
    return list((await session.scalars(stmt)).all())


async def _forms(session: AsyncSession, ids: list[int] | None, *, active_only: bool) -> list[LegacyForm]:
    stmt = select(LegacyForm).order_by(LegacyForm.id)
    if ids is not None:
        stmt = stmt.where(LegacyForm.id.in_(ids))
    if active_only:
        stmt = stmt.where(LegacyForm.state == "active")
    forms = list((await session.scalars(stmt)).all())
    if ids is not None:
        missing = sorted(set(ids) - {f.id for f in forms})
        if missing:
            raise invalid(
                [
                    FieldError(
                        "body.form_ids",
                        "legacy.form_unknown",
                        f"报表不存在{'或已停用' if active_only else ''}：{missing}",
                    )
                ]
            )
    return forms


def _as_forms(rows: list[LegacyForm]) -> list[Form]:
    return [Form(f.id, f.name, f.department_code, tuple(f.headers)) for f in rows]


async def proposals(
    session: AsyncSession, principal: Principal, ids: list[int] | None
) -> list[dict[str, Any]]:
    _may_manage(principal)
    rows = await _forms(session, ids, active_only=True)
    out = propose(_as_forms(rows), get_catalog())
    per_year = {f.id: FREQUENCY_PER_YEAR.get(f.frequency, 0) for f in rows}
    for p in out:
        p["legacy_submissions_per_year"] = sum(per_year[f["id"]] for f in p["forms"])
        if p["subject"]:
            p["template"] = pull_only_template(
                p, f"merged_{p['subject']}", f"{p['subject_label']}台账（合并报表）"
            )
    return out


async def go_live(
    session: AsyncSession, principal: Principal, ids: list[int], template_id: int, ledger: str
) -> tuple[list[LegacyForm], bool]:
    """Step 上线: the forms are replaced by the template and retired (C7 counts them as
    'before')."""
    _may_manage(principal)
    if get_catalog().ledger(ledger) is None:
        raise invalid([FieldError("body.ledger", "legacy.ledger_unknown", "台账不存在")])
    t = await session.get(ReportTemplate, template_id)
    if t is None:
        raise not_found("报表模板")
    if not principal.is_platform_admin and t.department_code != principal.department_code:
        raise Problem(403, "report.not_owner", "只有模板所属部门可以执行此操作")
    latest = (
        await session.execute(
            select(ReportTemplateVersion.pull_only)
            .where(ReportTemplateVersion.template_id == t.id)
            .order_by(ReportTemplateVersion.version.desc())
            .limit(1)
        )
    ).scalar_one()
    rows = await _forms(session, ids, active_only=True)
    now = datetime.now(UTC)
    for f in rows:
        f.state, f.template_id, f.target_ledger, f.retired_at = "retired", t.id, ledger, now
    await session.flush()
    # A template that still asks townships for something is allowed; the answer says whether it is
    # pull-only (nothing typed: the seed's goal).
    return rows, bool(latest)


async def breakdown(session: AsyncSession, ledger: str) -> dict[str, Any]:
    """ledger_source_breakdown and item-based ledger_upkeep_share of what the retired forms
    became."""
    cat = get_catalog()
    if cat.ledger(ledger) is None:
        raise not_found("台账")
    rows = list(
        (
            await session.scalars(
                select(LegacyForm).where(LegacyForm.target_ledger == ledger).order_by(LegacyForm.id)
            )
        ).all()
    )
    items: list[dict[str, Any]] = []
    for p in propose(_as_forms(rows), cat):
        items += p["items"]
    counts = {k: sum(1 for i in items if i["source"] == k) for k in ("platform", "department", "township")}
    fed = 0
    if items:
        pushed = set(
            (
                await session.execute(
                    select(PushEvent.ledger, func.unnest(PushEvent.fields))
                    .where(
                        PushEvent.status.in_(("applied", "unchanged")),
                        PushEvent.ledger.in_({i["ledger"] for i in items if i["ledger"]}),
                    )
                    .distinct()
                )
            ).all()
        )
        fed = sum(1 for i in items if (i["ledger"], i["field"]) in pushed)
    return {
        "ledger": ledger,
        "items": len(items),
        **counts,
        "legacy_reports_merged": len(rows),
        "upkeep_share": round(counts["township"] / len(items), 4) if items else None,
        "fed_by_push": fed,
    }
