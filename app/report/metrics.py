"""Burden metrics (/api/v1/metrics/burden): the reform's own numbers, counted exactly in SQL.

Per township and month (of dispatch, Beijing time): tasks, cells, auto-filled cells (every pulled cell
plus gap cells pre-filled from written-back ledger values), typed cells (gap cells a person typed or
uploaded with a value), auto-fill ratio, minutes from first open to first submission. Per department
and dispatch (template version × period): minutes from dispatch to the last approval, once complete.
"""

from __future__ import annotations

from sqlalchemy import Numeric, and_, case, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import FieldError, invalid
from app.report.common import is_township
from app.report.models import ReportCell, ReportTask, ReportTemplate, ReportTemplateVersion, ReportTransition


def _minutes(seconds):
    return func.round(cast(seconds, Numeric) / 60, 1)


async def burden(
    session: AsyncSession, principal: Principal, *, month: str | None, township: str | None
) -> dict:
    if month is not None and not (len(month) == 7 and month[4] == "-" and month.replace("-", "").isdigit()):
        raise invalid([FieldError("query.month", "metrics.month_format", "月份格式应为 YYYY-MM")])
    t, v, tpl = ReportTask, ReportTemplateVersion, ReportTemplate
    c = ReportCell.__table__
    tr = ReportTransition.__table__
    mon = func.to_char(func.timezone("Asia/Shanghai", t.dispatched_at), "YYYY-MM")
    where = []
    if month:
        where.append(mon == month)
    if township:
        where.append(t.township_code.like(township[:9] + "%"))
    # Who sees what: platform admins all; a department its own templates; a township itself.
    if is_township(principal):
        where.append(t.township_code.like(principal.region_code[:9] + "%"))
    elif not principal.is_platform_admin:
        where.append(tpl.department_code == (principal.department_code or ""))
    joined = (
        select(t.id)
        .join(v, v.id == t.version_id)
        .join(tpl, tpl.id == v.template_id)
        .where(*where)
        .subquery("scope")
    )
    cells = (
        select(
            c.c.task_id,
            func.count()
            .filter(
                and_(c.c.origin == "prefill", c.c.value.isnot(None), func.jsonb_typeof(c.c.value) != "null")
            )
            .label("pre"),
            func.count()
            .filter(
                and_(c.c.origin != "prefill", c.c.value.isnot(None), func.jsonb_typeof(c.c.value) != "null")
            )
            .label("typed"),
        )
        .where(c.c.task_id.in_(select(joined.c.id)))
        .group_by(c.c.task_id)
        .subquery("cells")
    )
    first_submit = (
        select(tr.c.task_id, func.min(tr.c.at).label("at"))
        .where(tr.c.to_state == "submitted")
        .group_by(tr.c.task_id)
        .subquery("fs")
    )
    total_cells = func.sum(t.row_count * t.column_count)
    auto = func.sum(t.row_count * (t.column_count - t.gap_column_count) + func.coalesce(cells.c.pre, 0))
    open_to_submit = first_submit.c.at - t.first_opened_at
    stmt = (
        select(
            t.township_code,
            func.max(t.township_name).label("township_name"),
            mon.label("month"),
            func.count().label("tasks"),
            total_cells.label("cells"),
            auto.label("auto_filled_cells"),
            func.sum(func.coalesce(cells.c.typed, 0)).label("typed_cells"),
            func.count(first_submit.c.at).label("submitted_tasks"),
            _minutes(extract("epoch", func.avg(open_to_submit))).label("avg_minutes_open_to_submit"),
            _minutes(func.percentile_cont(0.5).within_group(extract("epoch", open_to_submit))).label(
                "median_minutes_open_to_submit"
            ),
        )
        .select_from(t)
        .join(joined, joined.c.id == t.id)
        .outerjoin(cells, cells.c.task_id == t.id)
        .outerjoin(first_submit, first_submit.c.task_id == t.id)
        .group_by(t.township_code, mon)
        .order_by(mon, t.township_code)
    )
    townships = []
    for r in (await session.execute(stmt)).all():
        d = dict(r._mapping)
        for k in ("cells", "auto_filled_cells", "typed_cells"):
            d[k] = int(d[k] or 0)
        d["auto_fill_ratio"] = round(d["auto_filled_cells"] / d["cells"], 4) if d["cells"] else None
        for k in ("avg_minutes_open_to_submit", "median_minutes_open_to_submit"):
            d[k] = float(d[k]) if d[k] is not None else None
        townships.append(d)
    dept_stmt = (
        select(
            tpl.department_code,
            tpl.id.label("template_id"),
            tpl.name.label("template_name"),
            v.version,
            t.period,
            func.min(t.dispatched_at).label("dispatched_at"),
            func.count().label("tasks"),
            func.count().filter(t.state == "approved").label("approved_tasks"),
            case((func.bool_and(t.state == "approved"), func.max(t.approved_at))).label("completed_at"),
        )
        .select_from(t)
        .join(joined, joined.c.id == t.id)
        .join(v, v.id == t.version_id)
        .join(tpl, tpl.id == v.template_id)
        .group_by(tpl.department_code, tpl.id, tpl.name, v.version, t.period)
        .order_by(tpl.department_code, tpl.id, t.period)
    )
    departments = []
    for r in (await session.execute(dept_stmt)).all():
        d = dict(r._mapping)
        done = d["completed_at"]
        d["minutes_dispatch_to_last_approval"] = (
            round((done - d["dispatched_at"]).total_seconds() / 60, 1) if done else None
        )
        departments.append(d)
    return {"month": month, "townships": townships, "departments": departments}
