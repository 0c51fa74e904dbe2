"""Filling a task: open it (pre-filled cells read-only with provenance), save gap cells one by one or in
bulk, XLSX download / upload, submit (required gaps checked, write-back into the ledgers)."""

from __future__ import annotations

import asyncio
import io
import weakref
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import anyio
from sqlalchemy import (
    BigInteger,
    DateTime,
    String,
    and_,
    any_,
    bindparam,
    column,
    delete,
    func,
    literal,
    or_,
    select,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.access.policy import policy_for
from app.auth.principal import Principal
from app.catalog.coerce import coerce, is_blank
from app.catalog.loader import get_catalog
from app.catalog.validators import ValueIssue
from app.errors import FieldError, Problem, invalid
from app.org.regions import region_prefix
from app.report import bulk, rules
from app.report.common import (
    EDITABLE,
    bad_state,
    can_fill,
    department_unit,
    load_task,
    now,
    overdue,
    spec_of,
    transition,
)
from app.report.compiler import (
    OutColumn,
    cell_provenance,
    compile_template,
    department_policies,
    department_principal,
)
from app.report.models import (
    ReportCell,
    ReportComment,
    ReportReject,
    ReportRow,
    ReportTask,
    ReportTemplate,
    ReportTransition,
)
from app.sheets.guard import Limits
from app.sheets.reader import read_first_sheet
from app.report.reader import DENIED, HIDDEN, ReaderCut, audit_rows, holds_township, reader_cut

MAX_CELLS = 5000
_VALIDATION_THREADS = 4
_slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _validation_slots() -> anyio.CapacityLimiter:
    """At most a few validation threads per event loop (a limiter belongs to the loop it was made in)."""
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = anyio.CapacityLimiter(_VALIDATION_THREADS)
    return _slots[loop]
MAX_REPORTED = 200  # precise errors listed per request; the count says how many there were in all


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
    return {"id": task.id, "template": {"id": template.id, "code": template.code, "name": template.name,
                                        "version": version.version, "department_code": template.department_code},
            "period": task.period, "township_code": task.township_code, "township_name": task.township_name,
            "state": task.state, "overdue": overdue(task), "deadline": task.deadline,
            "dispatched_at": task.dispatched_at, "prefilled_at": task.prefilled_at,
            "first_opened_at": task.first_opened_at, "submitted_at": task.submitted_at,
            "approved_at": task.approved_at, "rows": task.row_count}


async def rows_of(session: AsyncSession, task_ids: list[int], *, limit: int | None = None, offset: int = 0,
                  cut: ReaderCut | None = None, cols: list[OutColumn] | None = None):
    """Rows with their gap values (and origins) merged in SQL, in row order.

    With a reader's cut (and the columns): only the rows in its scope, cells cut to its levels in SQL.
    """
    r, c = ReportRow.__table__, ReportCell.__table__
    gaps = (select(func.jsonb_object_agg(c.c.column, c.c.value)).where(c.c.task_id == r.c.task_id,
                                                                          c.c.row_key == r.c.row_key)
            .correlate(r).scalar_subquery())
    origins = (select(func.jsonb_object_agg(c.c.column, c.c.origin)).where(c.c.task_id == r.c.task_id,
                                                                              c.c.row_key == r.c.row_key)
               .correlate(r).scalar_subquery())
    stmt = (select(r.c.task_id, r.c.row_key, r.c.row_no, r.c.label, r.c.record_id, r.c.region_code, r.c.data,
                   r.c.prov, gaps.label("gaps"), origins.label("origins"))
            .where(r.c.task_id.in_(task_ids)).order_by(r.c.task_id, r.c.row_no).offset(offset))
    if cut is not None:
        region = row_region(r)
        stmt = stmt.add_columns(region.label("reg")).where(cut.rows(region))
    if limit is not None:
        stmt = stmt.limit(limit)
    if cut is not None:
        page = stmt.subquery("p")
        data, gap_cells = cut.cells(cols or [], page.c.data, page.c.gaps, page.c.reg)
        stmt = select(page.c.task_id, page.c.row_key, page.c.row_no, page.c.label, page.c.record_id,
                      page.c.region_code, data.label("data"), page.c.prov, gap_cells.label("gaps"),
                      page.c.origins).order_by(page.c.task_id, page.c.row_no)
    return (await session.execute(stmt)).all()


def row_region(r) -> ColumnElement:
    """Where a stored row lies: its record's region, its village / township, or (code-value rows of an
    aggregate) the task's township."""
    t = ReportTask.__table__
    return func.coalesce(r.c.region_code,
                         select(t.c.township_code).where(t.c.id == r.c.task_id).correlate(r).scalar_subquery())


async def visible_keys(session: AsyncSession, task: ReportTask, cut: ReaderCut, keys: set[str]) -> set[str]:
    """Which of these row keys of a task the reader may see."""
    if not keys:
        return set()
    r = ReportRow.__table__
    return set((await session.scalars(select(r.c.row_key).where(
        r.c.task_id == task.id, r.c.row_key.in_(sorted(keys)), cut.rows(row_region(r))))).all())


async def open_task(session: AsyncSession, principal: Principal, task_id: int, *, limit: int, offset: int) -> dict:
    task, version, template = await load_task(session, principal, task_id)
    if can_fill(principal, task) and task.first_opened_at is None:
        task.first_opened_at = now()  # burden metrics: time from first open to submit
        if task.state == "dispatched":
            transition(session, actor=principal.actor, frm="dispatched", to="in_progress", task_id=task.id)
            task.state = "in_progress"
        await session.flush()
    spec = spec_of(version)
    cols = await columns_for(session, template, spec)
    row_rules = rules.usable(spec, cols)
    cut = await reader_cut(session, principal, spec, cols)  # what this reader sees: its rows, its levels
    shown = cut.out_columns(cols)
    codes = {c.code for c in shown}
    ledger = spec.ledger if spec.kind == "list" else None
    page = await rows_of(session, [task.id], limit=limit, offset=offset, cut=cut, cols=cols)
    rows = [{
        "key": r.row_key, "no": r.row_no, "label": r.label, "region_code": r.region_code,
        "record": {"ledger": ledger, "id": r.record_id, "href": f"/api/v1/ledgers/{ledger}/records/{r.record_id}"}
        if r.record_id else None,
        "cells": {c.code: (r.gaps or {}).get(c.code) if c.kind == "gap" else r.data.get(c.code) for c in shown},
        "provenance": {k: v for k, v in cell_provenance(r.prov, cols).items()
                       if k in codes and cut.discloses_presence(k)},
        "gap_origin": {k: v for k, v in (r.origins or {}).items() if k in codes},
    } for r in page]
    await audit_rows(session, cut, shown, [r.record_id for r in page], "report:task",
                     {"task_id": task.id, "template_id": template.id})
    comments = (await session.scalars(select(ReportComment).where(ReportComment.task_id == task.id)
                                      .order_by(ReportComment.id))).all()
    seen = await visible_keys(session, task, cut, {c.row_key for c in comments if c.row_key})
    trans = (await session.scalars(select(ReportTransition).where(ReportTransition.task_id == task.id)
                                   .order_by(ReportTransition.id))).all()
    return {
        **task_head(task, template, version),
        "kind": spec.kind, "ledger": spec.ledger, "instructions": spec.instructions,
        "editable": can_fill(principal, task) and task.state in EDITABLE,
        "columns": rules.annotate(cut.public(cols), row_rules),
        "rules": [r.public() for r in row_rules if r.kind == "check"],
        "items": rows, "limit": limit, "offset": offset,
        "missing_required": await _missing_count(session, task, cols),
        "rejects": await rejects_of(session, task, cut),  # uploaded cells that failed, kept until fixed
        "comments": [{"id": c.id, "row": c.row_key, "column": c.column, "body": c.body, "author": c.author,
                      "at": c.created_at} for c in comments if c.row_key is None or c.row_key in seen],
        "transitions": [{"from": t.from_state, "to": t.to_state, "actor": t.actor, "at": t.at, "note": t.note}
                        for t in trans],
    }


def _editable(principal: Principal, task: ReportTask) -> None:
    if not can_fill(principal, task):
        raise Problem(403, "report.not_filler", "只有任务所属镇街可以填报")
    if task.state not in EDITABLE:
        raise bad_state(task.state, "修改")


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


def _check_cells(cells: list[CellInput], cols: list[OutColumn], known_rows: set[str]) -> tuple[list, list]:
    by_code = {c.code: c for c in cols}
    ok, bad = [], []
    catalog = get_catalog()
    for cell in cells:
        col = by_code.get(cell.column)
        if cell.row not in known_rows:
            bad.append(CellProblem(cell, "cell.row_unknown", "该行不存在"))
        elif col is None:
            bad.append(CellProblem(cell, "cell.column_unknown", "该列不存在"))
        elif col.kind != "gap":
            bad.append(CellProblem(cell, "cell.readonly",
                                   "该列由台账自动生成，不能在报表中修改；请修改台账记录后刷新"))
        elif is_blank(cell.value):
            ok.append((cell, None))
        else:
            try:
                ok.append((cell, jsonable(coerce(col.gap, cell.value, catalog).value)))
            except ValueIssue as issue:
                bad.append(CellProblem(cell, issue.code, f"{col.label}：{issue.message}"))
    return ok, bad


async def _check_rules(session: AsyncSession, task: ReportTask, cols: list[OutColumn], ok: list,
                       row_rules: list[rules.RowRule]) -> tuple[list, list[CellProblem]]:
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


async def rule_rows(session: AsyncSession, task: ReportTask, keys: list[str] | None):
    """Rows with their pulled data and stored gap values, for the row rules (all rows when keys is None)."""
    r, c = ReportRow.__table__, ReportCell.__table__
    gaps = (select(func.jsonb_object_agg(c.c.column, c.c.value)).where(c.c.task_id == r.c.task_id,
                                                                          c.c.row_key == r.c.row_key)
            .correlate(r).scalar_subquery())
    stmt = select(r.c.row_key, r.c.row_no, r.c.data, gaps.label("gaps")).where(r.c.task_id == task.id)
    if keys is not None:
        stmt = stmt.where(r.c.row_key == any_(bindparam("rule_keys", keys, type_=ARRAY(String))))
    return (await session.execute(stmt.order_by(r.c.row_no))).all()


def cell_problem(bad: list[CellProblem], cols: list[OutColumn]) -> Problem:
    labels = {c.code: c.label for c in cols}
    shown = bad[:MAX_REPORTED]
    return Problem(
        422, "report.cells_invalid", "部分单元格未通过校验",
        errors=[FieldError(b.cell.path, b.code, b.reason) for b in shown],
        extra={"error_count": len(bad),
               "cells": [{**b.cell.where, "row_key": b.cell.row, "column_code": b.cell.column,
                          "column_label": labels.get(b.cell.column), "code": b.code, "reason": b.reason}
                         for b in shown]},
    )


async def save_cells(session: AsyncSession, principal: Principal, task_id: int, items: list[dict], *,
                     origin: str = "typed", path_prefix: str = "body.cells") -> dict:
    task, version, template = await load_task(session, principal, task_id)
    _editable(principal, task)
    spec = spec_of(version)
    cols = await columns_for(session, template, spec)
    if len(items) > MAX_CELLS:
        raise invalid([FieldError(path_prefix, "report.too_many_cells", f"一次最多保存 {MAX_CELLS} 个单元格")])
    cells = []
    for i, it in enumerate(items):
        if isinstance(it, CellInput):
            cells.append(it)
        else:
            cells.append(CellInput(str(it.get("row")), str(it.get("column")), it.get("value"),
                                   f"{path_prefix}.{i}.value", {"row": it.get("row"), "column": it.get("column")}))
    return await _store(session, principal, task, cols, cells, origin, rules.usable(spec, cols))


async def _store(session: AsyncSession, principal: Principal, task: ReportTask, cols: list[OutColumn],
                 cells: list[CellInput], origin: str, row_rules: list[rules.RowRule]) -> dict:
    r = ReportRow.__table__
    asked = sorted({c.row for c in cells})
    known = set((await session.scalars(select(r.c.row_key).where(
        r.c.task_id == task.id, r.c.row_key == any_(bindparam("asked", asked, type_=ARRAY(String)))))).all()
    ) if asked else set()
    # Off the event loop: thousands of cells (typed or uploaded) coerce and match their patterns in a
    # worker thread, a few at a time, so one big batch never stalls other requests.
    ok, bad = await anyio.to_thread.run_sync(_check_cells, cells, cols, known, limiter=_validation_slots())
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
        stored = {(k, col): v for k, col, v in (await session.execute(
            select(c.c.row_key, c.c.column, c.c.value).where(c.c.task_id == task.id))).all()}
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


async def _upsert_cells(session: AsyncSession, task: ReportTask, latest: dict[tuple[str, str], object], origin: str,
                        actor: str) -> None:
    """One INSERT … SELECT FROM unnest(arrays) … ON CONFLICT for any number of cells (app/report/bulk.py).
    A cleared cell is stored as JSON null: typed, but empty."""
    c = ReportCell.__table__
    keys = list(latest)
    src = bulk.unnest("cells", row_key=[k for k, _ in keys], col=[col for _, col in keys],
                      value=bulk.json_texts(list(latest.values())))
    stmt = pg_insert(c).from_select(
        ["task_id", "row_key", "column", "value", "origin", "updated_by", "updated_at"],
        select(literal(task.id, BigInteger), src.c.row_key, src.c.col, bulk.as_jsonb(src.c.value),
               literal(origin, String), literal(actor, String), literal(now(), DateTime(timezone=True))))
    stmt = stmt.on_conflict_do_update(
        index_elements=["task_id", "row_key", "column"],
        set_={"value": stmt.excluded.value, "origin": stmt.excluded.origin,
              "updated_by": stmt.excluded.updated_by, "updated_at": stmt.excluded.updated_at})
    await session.execute(stmt)


def _reject_view(b: CellProblem, labels: dict[str, str]) -> dict:
    return {**b.cell.where, "row_key": b.cell.row, "column_code": b.cell.column,
            "column_label": labels.get(b.cell.column), "code": b.code, "reason": b.reason}


async def _keep_rejects(session: AsyncSession, principal: Principal, task: ReportTask,
                        fixed: set[tuple[str, str]], bad: list[CellProblem]) -> None:
    """An upload keeps the good cells and the bad ones too: each rejected cell is stored with its raw
    value, sheet position and reason until a valid value for that cell is saved."""
    rj = ReportReject.__table__
    done = fixed | {(b.cell.row, b.cell.column) for b in bad}
    if done:
        gone = bulk.unnest("done", row_key=[k for k, _ in done], col=[c for _, c in done])
        await session.execute(delete(rj).where(rj.c.task_id == task.id, rj.c.row_key == gone.c.row_key,
                                               rj.c.column == gone.c.col))
    # A cell of a row this task doesn't have can't be fixed in it: reported, not kept.
    latest = {(b.cell.row, b.cell.column): b for b in bad if b.code != "cell.row_unknown"}
    if latest:
        items = list(latest.items())
        src = bulk.unnest(
            "rejects", row_key=[rk for (rk, _), _ in items], col=[col for (_, col), _ in items],
            raw=[None if b.cell.value is None else str(b.cell.value)[:500] for _, b in items],
            sheet_cell=[f"{b.cell.where.get('column', '')}{b.cell.where.get('row', '')}"[:12] for _, b in items],
            code=[b.code[:60] for _, b in items], reason=[b.reason[:200] for _, b in items])
        await session.execute(pg_insert(rj).from_select(
            ["task_id", "row_key", "column", "raw", "sheet_cell", "code", "reason", "created_by"],
            select(literal(task.id, BigInteger), src.c.row_key, src.c.col, src.c.raw, src.c.sheet_cell,
                   src.c.code, src.c.reason, literal(principal.actor, String))))


async def rejects_of(session: AsyncSession, task: ReportTask, cut: ReaderCut | None = None) -> list[dict]:
    rows = (await session.scalars(select(ReportReject).where(ReportReject.task_id == task.id)
                                  .order_by(ReportReject.created_at, ReportReject.row_key))).all()
    if cut is not None:  # a reader sees the rejects of its own rows and columns only
        seen = await visible_keys(session, task, cut, {r.row_key for r in rows})
        rows = [r for r in rows if r.row_key in seen and r.column in cut.columns
                and cut.columns[r.column].level not in (HIDDEN, DENIED)]
    return [{"row_key": r.row_key, "column_code": r.column, "sheet_cell": r.sheet_cell, "raw": r.raw,
             "code": r.code, "reason": r.reason, "at": r.created_at} for r in rows]


async def _missing(session: AsyncSession, task: ReportTask, cols: list[OutColumn], limit: int | None):
    required = [c.code for c in cols if c.kind == "gap" and c.required]
    if not required:
        return [], 0
    r, c = ReportRow.__table__, ReportCell.__table__
    req = values(column("code", String), name="req").data([(x,) for x in required])
    cond = and_(c.c.task_id == r.c.task_id, c.c.row_key == r.c.row_key, c.c.column == req.c.code)
    base = (select(r.c.row_key, r.c.row_no, req.c.code).select_from(r.join(req, literal(True)).outerjoin(c, cond))
            .where(r.c.task_id == task.id,
                   or_(c.c.value.is_(None), c.c.value == literal("null").cast(JSONB))))
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = (await session.execute(base.order_by(r.c.row_no, req.c.code).limit(limit))).all() if limit else []
    return rows, total


async def _missing_count(session: AsyncSession, task: ReportTask, cols: list[OutColumn]) -> int:
    return (await _missing(session, task, cols, None))[1]


async def submit(session: AsyncSession, principal: Principal, task_id: int) -> dict:
    task, version, template = await load_task(session, principal, task_id)
    _editable(principal, task)
    spec = spec_of(version)
    cols = await columns_for(session, template, spec)
    pending = await rejects_of(session, task)
    if pending:
        raise Problem(422, "report.rejects_pending", "导入时有单元格未通过校验，请先更正后再提交",
                      errors=[FieldError(f"rows.{r['row_key']}.{r['column_code']}", r["code"],
                                         f"表格 {r['sheet_cell']}：{r['reason']}") for r in pending[:MAX_REPORTED]],
                      extra={"reject_count": len(pending)})
    missing, total = await _missing(session, task, cols, MAX_REPORTED)
    if total:
        labels = {c.code: c.label for c in cols}
        raise Problem(422, "report.required_missing", "还有必填的空缺单元格未填写",
                      errors=[FieldError(f"rows.{m.row_key}.{m.code}", "cell.required",
                                         f"第 {m.row_no} 行“{labels[m.code]}”为必填项") for m in missing],
                      extra={"missing_count": total,
                             "cells": [{"row": m.row_no, "row_key": m.row_key, "column_code": m.code,
                                        "column_label": labels[m.code]} for m in missing]})
    await _check_row_rules(session, task, cols, rules.usable(spec, cols))
    written = await _write_back(session, principal, task, cols)
    frm = task.state
    task.state, task.submitted_at = "submitted", now()
    transition(session, actor=principal.actor, frm=frm, to="submitted", task_id=task.id)
    await session.flush()
    return {**task_head(task, template, version), "written_back": written}


async def _check_row_rules(session: AsyncSession, task: ReportTask, cols: list[OutColumn],
                           row_rules: list[rules.RowRule]) -> None:
    """At submit: every row against every rule, conditionally required cells included."""
    if not row_rules:
        return
    fails = [f for row in await rule_rows(session, task, None)
             for f in rules.failures(row_rules, row.row_key, row.row_no, row.data, row.gaps, with_required=True)]
    if not fails:
        return
    labels = {c.code: c.label for c in cols}
    shown = fails[:MAX_REPORTED]
    raise Problem(422, "report.rules_failed", "部分行未通过填报规则",
                  errors=[FieldError(f"rows.{f.row_key}.{f.rule.column}",
                                     "rule.required_when" if f.rule.kind == "required_when" else "rule.failed",
                                     f.reason(labels)) for f in shown],
                  extra={"failure_count": len(fails),
                         "rows": [{"row": f.row_no, "row_key": f.row_key, "column_code": f.rule.column,
                                   "column_label": labels.get(f.rule.column), "rule": f.rule.expr,
                                   "message": f.rule.message} for f in shown]})


async def _write_back(session: AsyncSession, principal: Principal, task: ReportTask, cols: list[OutColumn]) -> int:
    """Typed values of write-back gaps go into their ledger fields, with provenance = this task.

    Through the ledger service with the submitting township's own principal: its grants decide, and
    history records the change like any other edit. Unchanged values are no-ops there.
    """
    from app.ledger.service import update_record

    wb = {c.code: c.write_back for c in cols if c.write_back}
    if not wb:
        return 0
    r, c = ReportRow.__table__, ReportCell.__table__
    rows = (await session.execute(
        select(r.c.row_key, r.c.row_no, r.c.links, c.c.column, c.c.value)
        .join(c, and_(c.c.task_id == r.c.task_id, c.c.row_key == r.c.row_key))
        .where(r.c.task_id == task.id, c.c.column.in_(list(wb)), c.c.origin != "prefill")
        .order_by(r.c.row_no))).all()
    per_record: dict[tuple[str, int], dict] = {}
    for row in rows:
        ledger, fld = wb[row.column]
        rid = (row.links or {}).get(row.column)
        if rid is None:
            continue  # no linked record (e.g. no extension row yet): nothing to write into
        per_record.setdefault((ledger, int(rid)), {})[fld] = row.value
    source = f"report:task:{task.id}"
    n = 0
    for ledger in sorted({lg for lg, _ in per_record}):
        policy = await policy_for(session, principal, ledger)  # even ids and versions are read in scope
        t = policy.table
        ids = [rid for lg, rid in per_record if lg == ledger]
        versions = dict((await session.execute(
            select(t.c.id, t.c.version).where(t.c.id.in_(ids), policy.scope_clause()))).all())
        for rid in ids:
            if rid not in versions:
                continue
            body = {**per_record[(ledger, rid)], "version": versions[rid]}
            await update_record(session, principal, ledger, rid, body, None, source=source)
            n += 1
    return n


# ---- XLSX -------------------------------------------------------------------------------------

KEY_HEADER = "行键（勿改）"
TASK_PROPERTY = "onetable_task"  # custom document property of a downloaded sheet: "report-task:<id>"
UPLOAD_SLACK_ROWS, UPLOAD_SLACK_COLS = 1000, 50


def _task_mark(task: ReportTask) -> str:
    return f"report-task:{task.id}"


def _mismatch(task: ReportTask, template: ReportTemplate) -> Problem:
    msg = (f"该表格不是本任务的表格，未导入任何内容；请上传从“{template.name}”{task.period}"
           f"（{task.township_name}）任务下载并填写的表格")
    return Problem(422, "task.workbook_mismatch", "表格不属于本任务",
                   errors=[FieldError("file", "task.workbook_mismatch", msg)],
                   extra={"expected_task_id": task.id})


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
    task, version, template = await load_task(session, principal, task_id)
    spec = spec_of(version)
    cols = await columns_for(session, template, spec)
    cut = await reader_cut(session, principal, spec, cols)
    rows = await rows_of(session, [task.id], cut=cut, cols=cols)
    await audit_rows(session, cut, cut.out_columns(cols), [r.record_id for r in rows], "report:task_xlsx",
                     {"task_id": task.id, "template_id": template.id})
    cols = cut.out_columns(cols)
    # Tens of thousands of rows take seconds to write: in a worker thread, not on the event loop.
    content = await anyio.to_thread.run_sync(_workbook, task, cols, rows, limiter=_validation_slots())
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
    task, version, template = await load_task(session, principal, task_id)
    _editable(principal, task)
    spec = spec_of(version)
    cols = await columns_for(session, template, spec)
    # A sheet of this task holds its rows, a header and the lead columns; a little slack for notes a
    # filler adds below or beside. Anything bigger is refused before a reader expands it.
    limits = Limits(max_rows=task.row_count + 1 + UPLOAD_SLACK_ROWS, max_cols=len(cols) + 3 + UPLOAD_SLACK_COLS)
    sheet = await read_first_sheet(content, limits)
    _same_task(sheet.properties, task, template)
    grid = sheet.rows
    if not grid:
        raise invalid([FieldError("file", "xlsx.empty", "表格为空")])
    header = [str(h).strip() if h is not None else "" for h in grid[0]]
    if KEY_HEADER not in header:
        raise invalid([FieldError("xlsx.A1", "xlsx.key_missing", f"缺少“{KEY_HEADER}”列，请使用从本任务下载的表格")])
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
            cells.append(CellInput(key, code, raw, f"xlsx.{letter}{rn}",
                                   {"row": rn, "column": letter}))
    if cells and TASK_PROPERTY not in sheet.properties:
        # A sheet that doesn't say its task (rebuilt by another program): its row keys must be ours.
        r = ReportRow.__table__
        keys = sorted({c.row for c in cells})
        if not (await session.scalar(select(func.count()).where(
                r.c.task_id == task.id, r.c.row_key == any_(bindparam("keys", keys, type_=ARRAY(String)))))):
            raise _mismatch(task, template)
    out = await _store(session, principal, task, cols, cells, "upload", rules.usable(spec, cols))
    return {**out, "rows_read": len(grid) - 1, "columns_read": len(gap_at)}


__all__ = ["open_task", "save_cells", "submit", "download_xlsx", "upload_xlsx", "rows_of", "columns_for"]


async def list_tasks(session: AsyncSession, principal: Principal, *, period: str | None, state: str | None,
                     template_id: int | None) -> list[dict]:
    """Townships see their own tasks; departments the tasks of their templates; platform admins all."""
    from app.report.common import is_township
    from app.report.models import ReportTemplateVersion as V

    stmt = (select(ReportTask, V, ReportTemplate).join(V, V.id == ReportTask.version_id)
            .join(ReportTemplate, ReportTemplate.id == V.template_id))
    if is_township(principal):
        stmt = stmt.where(ReportTask.township_code.like(principal.region_code[:9] + "%"))
    elif not principal.is_platform_admin:
        stmt = stmt.where(ReportTemplate.department_code == (principal.department_code or ""))
    if period:
        stmt = stmt.where(ReportTask.period == period)
    if template_id:
        stmt = stmt.where(ReportTemplate.id == template_id)
    if state == "overdue":
        from app.report.common import today

        stmt = stmt.where(ReportTask.state.not_in(["submitted", "approved"]), ReportTask.deadline < today())
    elif state:
        stmt = stmt.where(ReportTask.state == state)
    rows = (await session.execute(stmt.order_by(ReportTask.deadline, ReportTask.id).limit(1000))).all()
    if not is_township(principal):
        # A task's row count is a count of the township's records: listed only to readers whose scope
        # of the template's ledger holds the whole township (townships list their own tasks).
        policies = await department_policies(session, principal)
        rows = [(t, v, tpl) for t, v, tpl in rows
                if holds_township(policies[v.spec["ledger"]].scope, t.township_code)]
    return [task_head(t, tpl, v) for t, v, tpl in rows]
