"""Reading a task's stored rows: column metadata (compiled like at dispatch), rows with their gap values
merged in SQL and cut to a reader, the task head, and the rows the row rules read.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.org.regions import region_prefix
from app.report.common import department_unit, overdue
from app.report.compiler import (
    OutColumn,
    compile_template,
    department_policies,
    department_principal,
)
from app.report.models import ReportCell, ReportRow, ReportTask, ReportTemplate
from app.report.reader import ReaderCut


async def columns_for(session: AsyncSession, template: ReportTemplate, spec) -> list[OutColumn]:
    """Column metadata (labels, types, gap validation), compiled like at dispatch."""
    key = ("report_columns", template.id, spec.model_dump_json())
    cached = session.info.get(key)
    if cached is None:
        dept = await department_unit(session, template)
        policies = await department_policies(session, department_principal(dept))
        cached = compile_template(spec, policies, region_prefix(dept.region_code), strict=False).columns
        session.info[key] = cached
    return cached


def jsonable(v: object) -> object:
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


def task_head(task: ReportTask, template: ReportTemplate, version) -> dict:
    return {
        "id": task.id,
        "template": {
            "id": template.id,
            "code": template.code,
            "name": template.name,
            "version": version.version,
            "department_code": template.department_code,
        },
        "period": task.period,
        "township_code": task.township_code,
        "township_name": task.township_name,
        "state": task.state,
        "overdue": overdue(task),
        "deadline": task.deadline,
        "dispatched_at": task.dispatched_at,
        "prefilled_at": task.prefilled_at,
        "first_opened_at": task.first_opened_at,
        "submitted_at": task.submitted_at,
        "approved_at": task.approved_at,
        "rows": task.row_count,
    }


async def rows_of(
    session: AsyncSession,
    task_ids: list[int],
    *,
    limit: int | None = None,
    offset: int = 0,
    cut: ReaderCut | None = None,
    cols: list[OutColumn] | None = None,
):
    """Rows with their gap values (and origins) merged in SQL, in row order.

    With a reader's cut (and the columns): only the rows in its scope, cells cut to its levels in SQL.
    """
    r, c = ReportRow.__table__, ReportCell.__table__
    gaps = (
        select(func.jsonb_object_agg(c.c.column, c.c.value))
        .where(c.c.task_id == r.c.task_id, c.c.row_key == r.c.row_key)
        .correlate(r)
        .scalar_subquery()
    )
    origins = (
        select(func.jsonb_object_agg(c.c.column, c.c.origin))
        .where(c.c.task_id == r.c.task_id, c.c.row_key == r.c.row_key)
        .correlate(r)
        .scalar_subquery()
    )
    stmt = (
        select(
            r.c.task_id,
            r.c.row_key,
            r.c.row_no,
            r.c.label,
            r.c.record_id,
            r.c.region_code,
            r.c.data,
            r.c.prov,
            gaps.label("gaps"),
            origins.label("origins"),
        )
        .where(r.c.task_id.in_(task_ids))
        .order_by(r.c.task_id, r.c.row_no)
        .offset(offset)
    )
    if cut is not None:
        region = row_region(r)
        stmt = stmt.add_columns(region.label("reg")).where(cut.rows(region))
    if limit is not None:
        stmt = stmt.limit(limit)
    if cut is not None:
        page = stmt.subquery("p")
        data, gap_cells = cut.cells(cols or [], page.c.data, page.c.gaps, page.c.reg)
        stmt = select(
            page.c.task_id,
            page.c.row_key,
            page.c.row_no,
            page.c.label,
            page.c.record_id,
            page.c.region_code,
            data.label("data"),
            page.c.prov,
            gap_cells.label("gaps"),
            page.c.origins,
        ).order_by(page.c.task_id, page.c.row_no)
    return (await session.execute(stmt)).all()


def row_region(r) -> ColumnElement:
    """Where a stored row lies: its record's region, its village / township, or (code-value rows of an
    aggregate) the task's township."""
    t = ReportTask.__table__
    return func.coalesce(
        r.c.region_code, select(t.c.township_code).where(t.c.id == r.c.task_id).correlate(r).scalar_subquery()
    )


async def visible_keys(session: AsyncSession, task: ReportTask, cut: ReaderCut, keys: set[str]) -> set[str]:
    """Which of these row keys of a task the reader may see."""
    if not keys:
        return set()
    r = ReportRow.__table__
    return set(
        (
            await session.scalars(
                select(r.c.row_key).where(
                    r.c.task_id == task.id, r.c.row_key.in_(sorted(keys)), cut.rows(row_region(r))
                )
            )
        ).all()
    )


async def rule_rows(session: AsyncSession, task: ReportTask, keys: list[str] | None):
    """Rows with their pulled data and stored gap values, for the row rules (all rows when keys is None)."""
    r, c = ReportRow.__table__, ReportCell.__table__
    gaps = (
        select(func.jsonb_object_agg(c.c.column, c.c.value))
        .where(c.c.task_id == r.c.task_id, c.c.row_key == r.c.row_key)
        .correlate(r)
        .scalar_subquery()
    )
    stmt = select(r.c.row_key, r.c.row_no, r.c.data, gaps.label("gaps")).where(r.c.task_id == task.id)
    if keys is not None:
        stmt = stmt.where(r.c.row_key == any_(bindparam("rule_keys", keys, type_=ARRAY(String))))
    return (await session.execute(stmt.order_by(r.c.row_no))).all()
