"""Opening a task: pre-filled cells read-only with provenance, gap cells, rejects, comments and
transitions, all cut to the reader; the column metadata carries the row rules for the grid.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.report import rules
from app.report.common import EDITABLE, can_fill, now, spec_of, transition
from app.report.compiler import cell_provenance
from app.report.models import ReportComment, ReportTransition
from app.report.reader import audit_rows, reader_cut
from app.report.tasks.access import readable_task
from app.report.tasks.cells import rejects_of
from app.report.tasks.rows import columns_for, rows_of, task_head, visible_keys
from app.report.tasks.submit import missing_count


async def open_task(
    session: AsyncSession, principal: Principal, task_id: int, *, limit: int, offset: int
) -> dict:
    task, version, template = await readable_task(session, principal, task_id)
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
    rows = [
        {
            "key": r.row_key,
            "no": r.row_no,
            "label": r.label,
            "region_code": r.region_code,
            "record": {
                "ledger": ledger,
                "id": r.record_id,
                "href": f"/api/v1/ledgers/{ledger}/records/{r.record_id}",
            }
            if r.record_id
            else None,
            "cells": {
                c.code: (r.gaps or {}).get(c.code) if c.kind == "gap" else r.data.get(c.code) for c in shown
            },
            "provenance": {
                k: v
                for k, v in cell_provenance(r.prov, cols).items()
                if k in codes and cut.discloses_presence(k)
            },
            "gap_origin": {k: v for k, v in (r.origins or {}).items() if k in codes},
        }
        for r in page
    ]
    await audit_rows(
        session,
        cut,
        shown,
        [r.record_id for r in page],
        "report:task",
        {"task_id": task.id, "template_id": template.id},
    )
    comments = (
        await session.scalars(
            select(ReportComment).where(ReportComment.task_id == task.id).order_by(ReportComment.id)
        )
    ).all()
    seen = await visible_keys(session, task, cut, {c.row_key for c in comments if c.row_key})
    trans = (
        await session.scalars(
            select(ReportTransition).where(ReportTransition.task_id == task.id).order_by(ReportTransition.id)
        )
    ).all()
    return {
        **task_head(task, template, version),
        "kind": spec.kind,
        "ledger": spec.ledger,
        "instructions": spec.instructions,
        "editable": can_fill(principal, task) and task.state in EDITABLE,
        "columns": rules.annotate(cut.public(cols), row_rules),
        "rules": [r.public() for r in row_rules if r.kind == "check"],
        "items": rows,
        "limit": limit,
        "offset": offset,
        "missing_required": await missing_count(session, task, cols),
        "rejects": await rejects_of(session, task, cut),  # uploaded cells that failed, kept until fixed
        "comments": [
            {
                "id": c.id,
                "row": c.row_key,
                "column": c.column,
                "body": c.body,
                "author": c.author,
                "at": c.created_at,
            }
            for c in comments
            if c.row_key is None or c.row_key in seen
        ],
        "transitions": [
            {"from": t.from_state, "to": t.to_state, "actor": t.actor, "at": t.at, "note": t.note}
            for t in trans
        ],
    }
