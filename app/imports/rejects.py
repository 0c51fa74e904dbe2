"""The rejects of a dry run as an XLSX the clerk fixes and uploads again: the sheet's own header and the
rejected rows' cells as typed, the offending cells highlighted with the reason as a comment, and two
trailing columns 原行号 / 问题说明 (on re-upload they map to nothing and are left out, flagged)."""

from __future__ import annotations

import io
from typing import Any

import xlsxwriter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.imports.jobs import load_batch
from app.imports.models import ImportRow
from app.report.export import WORKBOOK_OPTIONS


async def rejects_xlsx(session: AsyncSession, principal: Principal, batch_id: int) -> tuple[bytes, str]:
    batch = await load_batch(session, principal, batch_id)
    rows = (
        await session.execute(
            select(ImportRow.row_no, ImportRow.raw, ImportRow.issues)
            .where(ImportRow.batch_id == batch.id, ImportRow.outcome == "error")
            .order_by(ImportRow.row_no)
        )
    ).all()
    headers: list[str] = list(batch.headers or [])
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, WORKBOOK_OPTIONS)
    ws = wb.add_worksheet("待修正")
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    bad = wb.add_format({"bg_color": "#FFC7CE"})
    for c, h in enumerate([*headers, "原行号", "问题说明"]):
        ws.write_string(0, c, h, head)
    col_of = {h: i for i, h in enumerate(headers)}
    for m in batch.mapping or []:  # issues naming a field (or a path to it) rather than a header
        if m.get("field"):
            col_of.setdefault(str(m["field"]), int(m["index"]))
            col_of.setdefault(str(m["field"]).rsplit(".", 1)[-1].lstrip("@"), int(m["index"]))
    for n, r in enumerate(rows, 1):
        raw: list[Any] = list(r.raw or [])
        errors = [i for i in (r.issues or []) if i.get("severity") == "error"]
        marked: dict[int, list[str]] = {}
        for i in errors:
            at = col_of.get(str(i.get("column") or ""), col_of.get(str(i.get("field") or "")))
            if at is not None:
                marked.setdefault(at, []).append(str(i.get("message")))
        for c in range(len(headers)):
            v = raw[c] if c < len(raw) else None
            text = "" if v is None else str(v)
            if c in marked:
                ws.write_string(n, c, text, bad)
                ws.write_comment(n, c, "；".join(marked[c]))
            elif text:
                ws.write_string(n, c, text)
        ws.write_number(n, len(headers), r.row_no)
        ws.write_string(
            n, len(headers) + 1, "；".join(f"{i.get('column') or '整行'}：{i.get('message')}" for i in errors)
        )
    ws.freeze_panes(1, 0)
    wb.close()
    stem = batch.file_name.rsplit(".", 1)[0]
    return buf.getvalue(), f"{stem}_待修正.xlsx"
