"""XLSX round trip of a task: download (written in a worker thread) and upload (parsed in the sheets
worker, gap columns matched by header label, every bad cell reported with its sheet row and letter).
"""

from __future__ import annotations

import io

import anyio
from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.coerce import is_blank
from app.errors import FieldError, Problem, invalid
from app.report import rules
from app.report.common import spec_of
from app.report.compiler import OutColumn
from app.report.models import ReportRow, ReportTask, ReportTemplate
from app.report.reader import audit_rows, reader_cut
from app.report.tasks.access import fillable_task, readable_task
from app.report.tasks.cells import CellInput, store_cells, worker_slots
from app.report.tasks.rows import columns_for, rows_of
from app.sheets.guard import Limits
from app.sheets.reader import read_first_sheet

KEY_HEADER = "行键（勿改）"
TASK_PROPERTY = "onetable_task"  # custom document property of a downloaded sheet: "report-task:<id>"
UPLOAD_SLACK_ROWS, UPLOAD_SLACK_COLS = 1000, 50


def _task_mark(task: ReportTask) -> str:
    return f"report-task:{task.id}"


def _mismatch(task: ReportTask, template: ReportTemplate) -> Problem:
    msg = (
        f"该表格不是本任务的表格，未导入任何内容；请上传从“{template.name}”{task.period}"
        f"（{task.township_name}）任务下载并填写的表格"
    )
    return Problem(
        422,
        "task.workbook_mismatch",
        "表格不属于本任务",
        errors=[FieldError("file", "task.workbook_mismatch", msg)],
        extra={"expected_task_id": task.id},
    )


def _same_task(properties: dict[str, str], task: ReportTask, template: ReportTemplate) -> None:
    mark = properties.get(TASK_PROPERTY)
    if mark is not None and mark != _task_mark(task):
        raise _mismatch(task, template)


def _col_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        s = chr(65 + rem) + s
    return s


async def download_xlsx(session: AsyncSession, principal: Principal, task_id: int) -> tuple[bytes, str]:
    task, version, template = await readable_task(session, principal, task_id)
    spec = spec_of(version)
    cols = await columns_for(session, template, spec)
    cut = await reader_cut(session, principal, spec, cols)
    rows = await rows_of(session, [task.id], cut=cut, cols=cols)
    await audit_rows(
        session,
        cut,
        cut.out_columns(cols),
        [r.record_id for r in rows],
        "report:task_xlsx",
        {"task_id": task.id, "template_id": template.id},
    )
    cols = cut.out_columns(cols)
    # Tens of thousands of rows take seconds to write: in a worker thread, not on the event loop.
    content = await anyio.to_thread.run_sync(_workbook, task, cols, rows, limiter=worker_slots())
    name = f"{template.name}-{task.period}-{task.township_name}.xlsx"
    return content, name


def _workbook(task: ReportTask, cols: list[OutColumn], rows) -> bytes:
    import xlsxwriter

    from app.report.export import WORKBOOK_OPTIONS, write_sheet

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, WORKBOOK_OPTIONS | {"remove_timezone": True})
    wb.set_custom_property(TASK_PROPERTY, _task_mark(task))  # upload checks it: no other task's sheet
    write_sheet(wb, f"{task.township_name}", cols, rows, key_header=KEY_HEADER, for_filling=True)
    wb.close()
    return buf.getvalue()


async def upload_xlsx(session: AsyncSession, principal: Principal, task_id: int, content: bytes) -> dict:
    """Read back a downloaded sheet: gap columns only, matched by header label; every bad cell reported
    with its sheet row and column letter."""
    task, version, template = await fillable_task(session, principal, task_id)
    spec = spec_of(version)
    cols = await columns_for(session, template, spec)
    # A sheet of this task holds its rows, a header and the lead columns; a little slack for notes a
    # filler adds below or beside. Anything bigger is refused before a reader expands it.
    limits = Limits(
        max_rows=task.row_count + 1 + UPLOAD_SLACK_ROWS, max_cols=len(cols) + 3 + UPLOAD_SLACK_COLS
    )
    sheet = await read_first_sheet(content, limits)
    _same_task(sheet.properties, task, template)
    grid = sheet.rows
    if not grid:
        raise invalid([FieldError("file", "xlsx.empty", "表格为空")])
    header = [str(h).strip() if h is not None else "" for h in grid[0]]
    if KEY_HEADER not in header:
        raise invalid(
            [FieldError("xlsx.A1", "xlsx.key_missing", f"缺少“{KEY_HEADER}”列，请使用从本任务下载的表格")]
        )
    key_idx = header.index(KEY_HEADER)
    gap_at = {}
    for c in cols:
        if c.kind == "gap":
            label = c.label + ("*" if c.required else "")
            for cand in (label, c.label, c.code):
                if cand in header:
                    gap_at[c.code] = header.index(cand)
                    break
    cells: list[CellInput] = []
    for rn, line in enumerate(grid[1:], start=2):
        if key_idx >= len(line) or is_blank(line[key_idx]):
            continue
        key = line[key_idx]
        key = str(int(key)) if isinstance(key, float) and key.is_integer() else str(key).strip()
        for code, ci in gap_at.items():
            raw = line[ci] if ci < len(line) else None
            letter = _col_letter(ci)
            cells.append(CellInput(key, code, raw, f"xlsx.{letter}{rn}", {"row": rn, "column": letter}))
    if cells and TASK_PROPERTY not in sheet.properties:
        # A sheet that doesn't say its task (rebuilt by another program): its row keys must be ours.
        r = ReportRow.__table__
        keys = sorted({c.row for c in cells})
        if not (
            await session.scalar(
                select(func.count()).where(
                    r.c.task_id == task.id, r.c.row_key == any_(bindparam("keys", keys, type_=ARRAY(String)))
                )
            )
        ):
            raise _mismatch(task, template)
    out = await store_cells(session, principal, task, cols, cells, "upload", rules.usable(spec, cols))
    return {**out, "rows_read": len(grid) - 1, "columns_read": len(gap_at)}
