"""Admission (报表准入): analyse what a template costs townships, then an administrator decides.

State machine per version: draft → submitted → approved | refused (reason required). A pull-only
template (no gap columns) costs no township anything: it is approved on submission and the
department pulls its data straight away.
"""

from __future__ import annotations

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.loader import get_catalog
from app.errors import FieldError, Problem, invalid
from app.org.models import OrgUnit, Region
from app.org.regions import region_prefix
from app.report.common import (
    bad_state,
    department_unit,
    latest_version,
    now,
    require_owner,
    spec_of,
    transition,
)
from app.report.compiler import compile_template, department_policies, department_principal
from app.report.dsl import TemplateSpec
from app.report.models import ReportTemplate, ReportTemplateVersion
from app.report.templates import template_view

SYSTEM = "system:admission"


async def analyse(session: AsyncSession, template: ReportTemplate, spec: TemplateSpec) -> dict:
    dept = await department_unit(session, template)
    prefix = region_prefix(dept.region_code)
    policies = await department_policies(session, department_principal(dept))
    compiled = compile_template(spec, policies, prefix, strict=False)
    gaps = [c for c in compiled.columns if c.kind == "gap"]
    covered = [c for c in compiled.columns if c.kind != "gap"]
    # Rows per township, from current ledger counts (list) or the region tree / code list (aggregate).
    townships = (
        await session.execute(
            select(OrgUnit.region_code, OrgUnit.name)
            .where(OrgUnit.kind == "township", OrgUnit.region_code.like(prefix + "%"))
            .order_by(OrgUnit.region_code)
        )
    ).all()
    if spec.kind == "list":
        s = compiled.stmt.subquery()
        k = func.left(s.c.region_code, literal_column("9"))
        counts: dict[str, int] = {
            r[0]: r[1] for r in (await session.execute(select(k, func.count()).group_by(k)))
        }
    elif compiled.code_rows is not None:  # code-value rows: the same for every township
        counts = {t.region_code[:9]: compiled.code_rows for t in townships}
    else:
        assert spec.rows is not None  # an aggregate template has its rows (dsl validation)
        level = 5 if spec.rows.by == "village" else 4
        k = func.left(Region.code, literal_column("9"))
        counts = {
            r[0]: r[1]
            for r in (
                await session.execute(
                    select(k, func.count())
                    .where(Region.code.like(prefix + "%"), Region.level == level)
                    .group_by(k)
                )
            )
        }
    per_township = [
        {
            "township_code": code,
            "township_name": name,
            "rows": counts.get(code[:9], 0),
            "typed_cells": counts.get(code[:9], 0) * len(gaps),
        }
        for code, name in townships
    ]
    fields = sorted(compiled.fields_used | {c.ledger_field for c in gaps if c.ledger_field})
    return {
        "pull_only": spec.pull_only,
        "columns": len(compiled.columns),
        "covered_columns": [c.code for c in covered],
        "gap_columns": [c.code for c in gaps],
        "write_back_columns": [c.code for c in gaps if c.write_back],
        "coverage_ratio": round(len(covered) / len(compiled.columns), 4),
        "townships": per_township,
        "typed_cells_per_township": round(sum(t["typed_cells"] for t in per_township) / len(per_township), 1)
        if per_township
        else 0,
        "typed_cells_total": sum(t["typed_cells"] for t in per_township),
        "fields": fields,
        "gaps_in_catalogue": _gaps_in_catalogue(spec),
        "overlap": await _overlap(session, template, set(fields), {c.label for c in gaps}),
        "ungranted": [e.as_dict() for e in compiled.denied],
    }


def _gaps_in_catalogue(spec: TemplateSpec) -> list[dict]:
    """Gap columns that ask by hand for something the data standard already keeps (same Chinese label)."""
    labels: dict[str, str] = {}
    for lg in get_catalog().ledgers.values():
        for f in lg.fields:
            labels.setdefault(f.label, f"{lg.code}.{f.code}")
    return [
        {"column": g.code, "field": labels[g.label]}
        for g in spec.gap_columns
        if g.label in labels and not g.write_back
    ]


async def _overlap(
    session: AsyncSession, template: ReportTemplate, fields: set[str], gap_labels: set[str]
) -> list[dict]:
    """Active templates (approved, frozen analysis) asking for the same fields or the same hand-typed items."""
    rows = (
        await session.execute(
            select(
                ReportTemplate.id,
                ReportTemplate.code,
                ReportTemplate.name,
                ReportTemplate.department_code,
                ReportTemplateVersion.version,
                ReportTemplateVersion.analysis,
                ReportTemplateVersion.spec,
            )
            .join(ReportTemplateVersion, ReportTemplateVersion.template_id == ReportTemplate.id)
            .where(ReportTemplateVersion.state == "approved", ReportTemplate.id != template.id)
        )
    ).all()
    out = []
    for r in rows:
        theirs = set((r.analysis or {}).get("fields", []))
        their_gaps = {c.get("label") for c in r.spec.get("columns", []) if c.get("kind") == "gap"}
        same_fields, same_gaps = sorted(fields & theirs), sorted(gap_labels & their_gaps)
        if same_fields or same_gaps:
            out.append(
                {
                    "template_id": r.id,
                    "code": r.code,
                    "name": r.name,
                    "department_code": r.department_code,
                    "version": r.version,
                    "fields": same_fields,
                    "gap_labels": same_gaps,
                }
            )
    return out


async def live_analysis(session: AsyncSession, principal: Principal, template: ReportTemplate) -> dict:
    v = await latest_version(session, template)
    assert v is not None  # a template is created with its first version
    return {"version": v.version, "state": v.state, **await analyse(session, template, spec_of(v))}


async def submit(session: AsyncSession, principal: Principal, template: ReportTemplate) -> dict:
    require_owner(principal, template)
    v = await latest_version(session, template)
    assert v is not None  # a template is created with its first version
    if v.state != "draft":
        raise bad_state(v.state, "提交准入")
    v.analysis = await analyse(session, template, spec_of(v))
    v.state, v.submitted_at = "submitted", now()
    transition(session, actor=principal.actor, frm="draft", to="submitted", version_id=v.id)
    if v.pull_only and not v.analysis["ungranted"]:
        v.state, v.decided_at, v.decided_by = "approved", now(), SYSTEM
        v.reason = "全部数据项由台账覆盖，镇街无需填报：自动准入，部门直接取数"
        transition(session, actor=SYSTEM, frm="submitted", to="approved", version_id=v.id, note=v.reason)
    await session.flush()
    return await template_view(session, template)


async def decide(
    session: AsyncSession,
    principal: Principal,
    template: ReportTemplate,
    *,
    approve: bool,
    reason: str | None,
) -> dict:
    if not principal.is_platform_admin:
        raise Problem(403, "auth.role_required", "只有平台管理员可以审批报表准入")
    v = await latest_version(session, template)
    assert v is not None  # a template is created with its first version
    if v.state != "submitted":
        raise bad_state(v.state, "审批")
    if not approve and not (reason or "").strip():
        raise invalid([FieldError("body.reason", "report.reason_required", "不予准入须说明理由")])
    if approve:
        # Grants may have been given since submission: decide on the ledgers and grants of now, and keep
        # that analysis (the frozen one would block approval forever).
        v.analysis = analysis = await analyse(session, template, spec_of(v))
        if analysis["ungranted"]:
            raise Problem(
                409,
                "report.ungranted_fields",
                "模板所属部门无权读取部分字段，不能准入",
                errors=[FieldError(**e) for e in analysis["ungranted"]],
            )
    to = "approved" if approve else "refused"
    v.state, v.reason, v.decided_at, v.decided_by = to, (reason or None), now(), principal.actor
    transition(session, actor=principal.actor, frm="submitted", to=to, version_id=v.id, note=reason)
    await session.flush()
    return await template_view(session, template)


__all__ = ["analyse", "decide", "live_analysis", "submit"]
