"""Submit: rejected upload cells, required and conditionally required gaps and row rules checked over the
whole task (each failure names row and column), then write-back and the state change.
"""

from __future__ import annotations

from sqlalchemy import String, and_, column, func, literal, or_, select, values
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import FieldError, Problem
from app.report import rules
from app.report.common import now, spec_of, transition
from app.report.compiler import OutColumn
from app.report.models import ReportCell, ReportRow, ReportTask
from app.report.tasks.access import fillable_task
from app.report.tasks.cells import MAX_REPORTED, rejects_of
from app.report.tasks.rows import columns_for, rule_rows, task_head
from app.report.tasks.write_back import write_back


async def missing_cells(session: AsyncSession, task: ReportTask, cols: list[OutColumn], limit: int | None):
    required = [c.code for c in cols if c.kind == "gap" and c.required]
    if not required:
        return [], 0
    r, c = ReportRow.__table__, ReportCell.__table__
    req = values(column("code", String), name="req").data([(x,) for x in required])
    cond = and_(c.c.task_id == r.c.task_id, c.c.row_key == r.c.row_key, c.c.column == req.c.code)
    base = (
        select(r.c.row_key, r.c.row_no, req.c.code)
        .select_from(r.join(req, literal(True)).outerjoin(c, cond))
        .where(r.c.task_id == task.id, or_(c.c.value.is_(None), c.c.value == literal("null").cast(JSONB)))
    )
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = (await session.execute(base.order_by(r.c.row_no, req.c.code).limit(limit))).all() if limit else []
    return rows, total


async def missing_count(session: AsyncSession, task: ReportTask, cols: list[OutColumn]) -> int:
    return (await missing_cells(session, task, cols, None))[1]


async def submit(session: AsyncSession, principal: Principal, task_id: int) -> dict:
    task, version, template = await fillable_task(session, principal, task_id)
    spec = spec_of(version)
    cols = await columns_for(session, template, spec)
    pending = await rejects_of(session, task)
    if pending:
        raise Problem(
            422,
            "report.rejects_pending",
            "导入时有单元格未通过校验，请先更正后再提交",
            errors=[
                FieldError(
                    f"rows.{r['row_key']}.{r['column_code']}",
                    r["code"],
                    f"表格 {r['sheet_cell']}：{r['reason']}",
                )
                for r in pending[:MAX_REPORTED]
            ],
            extra={"reject_count": len(pending)},
        )
    missing, total = await missing_cells(session, task, cols, MAX_REPORTED)
    if total:
        labels = {c.code: c.label for c in cols}
        raise Problem(
            422,
            "report.required_missing",
            "还有必填的空缺单元格未填写",
            errors=[
                FieldError(
                    f"rows.{m.row_key}.{m.code}",
                    "cell.required",
                    f"第 {m.row_no} 行“{labels[m.code]}”为必填项",
                )
                for m in missing
            ],
            extra={
                "missing_count": total,
                "cells": [
                    {
                        "row": m.row_no,
                        "row_key": m.row_key,
                        "column_code": m.code,
                        "column_label": labels[m.code],
                    }
                    for m in missing
                ],
            },
        )
    await check_row_rules(session, task, cols, rules.usable(spec, cols))
    written = await write_back(session, principal, task, cols)
    frm = task.state
    task.state, task.submitted_at = "submitted", now()
    transition(session, actor=principal.actor, frm=frm, to="submitted", task_id=task.id)
    await session.flush()
    return {**task_head(task, template, version), "written_back": written}


async def check_row_rules(
    session: AsyncSession, task: ReportTask, cols: list[OutColumn], row_rules: list[rules.RowRule]
) -> None:
    """At submit: every row against every rule, conditionally required cells included."""
    if not row_rules:
        return
    fails = [
        f
        for row in await rule_rows(session, task, None)
        for f in rules.failures(row_rules, row.row_key, row.row_no, row.data, row.gaps, with_required=True)
    ]
    if not fails:
        return
    labels = {c.code: c.label for c in cols}
    shown = fails[:MAX_REPORTED]
    raise Problem(
        422,
        "report.rules_failed",
        "部分行未通过填报规则",
        errors=[
            FieldError(
                f"rows.{f.row_key}.{f.rule.column}",
                "rule.required_when" if f.rule.kind == "required_when" else "rule.failed",
                f.reason(labels),
            )
            for f in shown
        ],
        extra={
            "failure_count": len(fails),
            "rows": [
                {
                    "row": f.row_no,
                    "row_key": f.row_key,
                    "column_code": f.rule.column,
                    "column_label": labels.get(f.rule.column),
                    "rule": f.rule.expr,
                    "message": f.rule.message,
                }
                for f in shown
            ],
        },
    )
