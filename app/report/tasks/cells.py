"""Saving gap cells (typed through the API or read from an uploaded sheet): per-cell validation off the
event loop, the row rules of touched rows, one bulk upsert, and rejected upload cells kept until fixed.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import (
    BigInteger,
    DateTime,
    String,
    any_,
    bindparam,
    delete,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.catalog.coerce import coerce, is_blank
from app.catalog.loader import get_catalog
from app.catalog.validators import ValueIssue
from app.errors import FieldError, Problem, invalid
from app.report import bulk, rules
from app.report.common import now, spec_of, transition
from app.report.compiler import OutColumn
from app.report.models import ReportCell, ReportReject, ReportRow, ReportTask
from app.report.reader import DENIED, HIDDEN, ReaderCut
from app.report.tasks.access import fillable_task
from app.report.tasks.rows import columns_for, jsonable, rule_rows, visible_keys

MAX_CELLS = 5000
_VALIDATION_THREADS = 4
_slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def worker_slots() -> anyio.CapacityLimiter:
    """At most a few validation threads per event loop (a limiter belongs to the loop it was made in)."""
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = anyio.CapacityLimiter(_VALIDATION_THREADS)
    return _slots[loop]


MAX_REPORTED = 200  # precise errors listed per request; the count says how many there were in all


@dataclass
class CellInput:
    row: str
    column: str
    value: object
    path: str  # where the value came from: body.cells.3.value, or xlsx.D7
    where: dict  # row / column as the filler sees them (row number, column letter, label)


@dataclass
class CellProblem:
    cell: CellInput
    code: str
    reason: str


def _check_cells(
    cells: list[CellInput], cols: list[OutColumn], known_rows: set[str]
) -> tuple[list[tuple[CellInput, object]], list[CellProblem]]:
    by_code = {c.code: c for c in cols}
    ok: list[tuple[CellInput, object]] = []
    bad: list[CellProblem] = []
    catalog = get_catalog()
    for cell in cells:
        col = by_code.get(cell.column)
        if cell.row not in known_rows:
            if cell.path.startswith("xlsx.") and is_blank(cell.value):
                continue  # an empty cell of a line that is no row of ours (notes below the table): nothing typed
            bad.append(CellProblem(cell, "cell.row_unknown", "该行不存在"))
        elif col is None:
            bad.append(CellProblem(cell, "cell.column_unknown", "该列不存在"))
        elif col.kind != "gap":
            bad.append(
                CellProblem(
                    cell, "cell.readonly", "该列由台账自动生成，不能在报表中修改；请修改台账记录后刷新"
                )
            )
        elif is_blank(cell.value):
            ok.append((cell, None))
        else:
            assert col.gap is not None  # a gap column carries its field (compiler)
            try:
                ok.append((cell, jsonable(coerce(col.gap, cell.value, catalog).value)))
            except ValueIssue as issue:
                bad.append(CellProblem(cell, issue.code, f"{col.label}：{issue.message}"))
    return ok, bad


async def _check_rules(
    session: AsyncSession, task: ReportTask, cols: list[OutColumn], ok: list, row_rules: list[rules.RowRule]
) -> tuple[list, list[CellProblem]]:
    """Rows touched by these cells, as they would be once saved (stored gaps, then these cells), against
    the template's row rules. A broken rule blames the cell of the request it names (its column, else
    another column it reads); rules the request did not touch are not its business."""
    touched: dict[str, dict[str, tuple[CellInput, object]]] = {}
    for cell, v in ok:
        touched.setdefault(cell.row, {})[cell.column] = (cell, v)
    labels = {c.code: c.label for c in cols}
    broken: dict[int, CellProblem] = {}
    for row in await rule_rows(session, task, sorted(touched)):
        mine = touched[row.row_key]
        gaps = {**(row.gaps or {}), **{col: v for col, (_, v) in mine.items()}}
        for f in rules.failures(row_rules, row.row_key, row.row_no, row.data, gaps, with_required=False):
            named = [c for c in (f.rule.column, *f.rule.refs) if c in mine]
            if named:
                cell = mine[named[0]][0]
                broken.setdefault(id(cell), CellProblem(cell, "rule.failed", f.reason(labels)))
    return [(c, v) for c, v in ok if id(c) not in broken], list(broken.values())


def cell_problem(bad: list[CellProblem], cols: list[OutColumn]) -> Problem:
    labels = {c.code: c.label for c in cols}
    shown = bad[:MAX_REPORTED]
    return Problem(
        422,
        "report.cells_invalid",
        "部分单元格未通过校验",
        errors=[FieldError(b.cell.path, b.code, b.reason) for b in shown],
        extra={
            "error_count": len(bad),
            "cells": [
                {
                    **b.cell.where,
                    "row_key": b.cell.row,
                    "column_code": b.cell.column,
                    "column_label": labels.get(b.cell.column),
                    "code": b.code,
                    "reason": b.reason,
                }
                for b in shown
            ],
        },
    )


async def save_cells(
    session: AsyncSession,
    principal: Principal,
    task_id: int,
    items: Sequence[dict[str, Any] | CellInput],
    *,
    origin: str = "typed",
    path_prefix: str = "body.cells",
) -> dict:
    task, version, template = await fillable_task(session, principal, task_id)
    spec = spec_of(version)
    cols = await columns_for(session, template, spec)
    if len(items) > MAX_CELLS:
        raise invalid(
            [FieldError(path_prefix, "report.too_many_cells", f"一次最多保存 {MAX_CELLS} 个单元格")]
        )
    cells: list[CellInput] = []
    for i, it in enumerate(items):
        if isinstance(it, CellInput):
            cells.append(it)
        else:
            cells.append(
                CellInput(
                    str(it.get("row")),
                    str(it.get("column")),
                    it.get("value"),
                    f"{path_prefix}.{i}.value",
                    {"row": it.get("row"), "column": it.get("column")},
                )
            )
    return await store_cells(session, principal, task, cols, cells, origin, rules.usable(spec, cols))


async def store_cells(
    session: AsyncSession,
    principal: Principal,
    task: ReportTask,
    cols: list[OutColumn],
    cells: list[CellInput],
    origin: str,
    row_rules: list[rules.RowRule],
) -> dict:
    r = ReportRow.__table__
    asked = sorted({c.row for c in cells})
    known = (
        set(
            (
                await session.scalars(
                    select(r.c.row_key).where(
                        r.c.task_id == task.id,
                        r.c.row_key == any_(bindparam("asked", asked, type_=ARRAY(String))),
                    )
                )
            ).all()
        )
        if asked
        else set()
    )
    # Off the event loop: thousands of cells (typed or uploaded) coerce and match their patterns in a
    # worker thread, a few at a time, so one big batch never stalls other requests.
    ok, bad = await anyio.to_thread.run_sync(_check_cells, cells, cols, known, limiter=worker_slots())
    if bad and origin != "upload":
        raise cell_problem(bad, [*cols])  # typed cells: the client still holds them, nothing is saved
    if row_rules and ok:
        ok, broken = await _check_rules(session, task, cols, ok, row_rules)
        if broken and origin != "upload":
            raise cell_problem(broken, [*cols])
        bad = [*bad, *broken]  # uploaded: kept as rejects like any other bad cell
    latest = {(c.row, c.column): v for c, v in ok}  # the last write of a cell in one request wins
    fixed = set(latest)  # valid now: any reject kept for these cells is resolved
    if origin == "upload" and latest:
        # A sheet carries every gap cell back: only those that differ from what is stored count as typed.
        c = ReportCell.__table__
        stored = {
            (k, col): v
            for k, col, v in (
                await session.execute(
                    select(c.c.row_key, c.c.column, c.c.value).where(c.c.task_id == task.id)
                )
            ).all()
        }
        latest = {k: v for k, v in latest.items() if stored.get(k) != v}
    if latest:
        await _upsert_cells(session, task, latest, origin, principal.actor)
    await _keep_rejects(session, principal, task, fixed, bad)
    if task.state == "dispatched":
        transition(session, actor=principal.actor, frm="dispatched", to="in_progress", task_id=task.id)
        task.state = "in_progress"
    await session.flush()
    out = {"saved": len(latest), "state": task.state}
    if origin == "upload":
        labels = {c.code: c.label for c in cols}
        out |= {"rejected": len(bad), "rejects": [_reject_view(b, labels) for b in bad[:MAX_REPORTED]]}
    return out


async def _upsert_cells(
    session: AsyncSession, task: ReportTask, latest: dict[tuple[str, str], object], origin: str, actor: str
) -> None:
    """One INSERT … SELECT FROM unnest(arrays) … ON CONFLICT for any number of cells (app/report/bulk.py).
    A cleared cell is stored as JSON null: typed, but empty."""
    c = ReportCell.__table__
    keys = list(latest)
    src = bulk.unnest(
        "cells",
        row_key=[k for k, _ in keys],
        col=[col for _, col in keys],
        value=bulk.json_texts(list(latest.values())),
    )
    stmt = pg_insert(c).from_select(
        ["task_id", "row_key", "column", "value", "origin", "updated_by", "updated_at"],
        select(
            literal(task.id, BigInteger),
            src.c.row_key,
            src.c.col,
            bulk.as_jsonb(src.c.value),
            literal(origin, String),
            literal(actor, String),
            literal(now(), DateTime(timezone=True)),
        ),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["task_id", "row_key", "column"],
        set_={
            "value": stmt.excluded.value,
            "origin": stmt.excluded.origin,
            "updated_by": stmt.excluded.updated_by,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await session.execute(stmt)


def _reject_view(b: CellProblem, labels: dict[str, str]) -> dict:
    return {
        **b.cell.where,
        "row_key": b.cell.row,
        "column_code": b.cell.column,
        "column_label": labels.get(b.cell.column),
        "code": b.code,
        "reason": b.reason,
    }


async def _keep_rejects(
    session: AsyncSession,
    principal: Principal,
    task: ReportTask,
    fixed: set[tuple[str, str]],
    bad: list[CellProblem],
) -> None:
    """An upload keeps the good cells and the bad ones too: each rejected cell is stored with its raw
    value, sheet position and reason until a valid value for that cell is saved."""
    rj = ReportReject.__table__
    done = fixed | {(b.cell.row, b.cell.column) for b in bad}
    if done:
        gone = bulk.unnest("done", row_key=[k for k, _ in done], col=[c for _, c in done])
        await session.execute(
            delete(rj).where(
                rj.c.task_id == task.id, rj.c.row_key == gone.c.row_key, rj.c.column == gone.c.col
            )
        )
    # A cell of a row this task doesn't have can't be fixed in it: reported, not kept.
    latest = {(b.cell.row, b.cell.column): b for b in bad if b.code != "cell.row_unknown"}
    if latest:
        items = list(latest.items())
        src = bulk.unnest(
            "rejects",
            row_key=[rk for (rk, _), _ in items],
            col=[col for (_, col), _ in items],
            raw=[None if b.cell.value is None else str(b.cell.value)[:500] for _, b in items],
            sheet_cell=[
                f"{b.cell.where.get('column', '')}{b.cell.where.get('row', '')}"[:12] for _, b in items
            ],
            code=[b.code[:60] for _, b in items],
            reason=[b.reason[:200] for _, b in items],
        )
        await session.execute(
            pg_insert(rj).from_select(
                ["task_id", "row_key", "column", "raw", "sheet_cell", "code", "reason", "created_by"],
                select(
                    literal(task.id, BigInteger),
                    src.c.row_key,
                    src.c.col,
                    src.c.raw,
                    src.c.sheet_cell,
                    src.c.code,
                    src.c.reason,
                    literal(principal.actor, String),
                ),
            )
        )


async def rejects_of(session: AsyncSession, task: ReportTask, cut: ReaderCut | None = None) -> list[dict]:
    rows = (
        await session.scalars(
            select(ReportReject)
            .where(ReportReject.task_id == task.id)
            .order_by(ReportReject.created_at, ReportReject.row_key)
        )
    ).all()
    if cut is not None:  # a reader sees the rejects of its own rows and columns only
        seen = await visible_keys(session, task, cut, {r.row_key for r in rows})
        rows = [
            r
            for r in rows
            if r.row_key in seen
            and r.column in cut.columns
            and cut.columns[r.column].level not in (HIDDEN, DENIED)
        ]
    return [
        {
            "row_key": r.row_key,
            "column_code": r.column,
            "sheet_cell": r.sheet_cell,
            "raw": r.raw,
            "code": r.code,
            "reason": r.reason,
            "at": r.created_at,
        }
        for r in rows
    ]
