"""CSV and XLSX renderings with Chinese headers: code values shown by their Chinese label, booleans as
是/否, dates as dates. XLSX: one sheet per report, plus a provenance sheet (数据来源)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import xlsxwriter

from app.catalog.loader import get_catalog
from app.report.common import STATE_ZH
from app.report.compiler import OutColumn

KIND_ZH = {
    "field": "台账字段",
    "aggregate": "台账统计",
    "formula": "公式",
    "ratio": "比例",
    "gap": "镇街填报",
}
SOURCE_ZH = {"city_platform": "市级平台", "township": "镇街录入"}


def display(col: OutColumn, v: object) -> object:
    """A value as a person reads it in a sheet."""
    if v is None:
        return None
    if isinstance(v, Decimal):
        v = int(v) if v == v.to_integral_value() else float(v)
    if col.type == "boolean" and isinstance(v, bool):
        return "是" if v else "否"
    if col.type == "code" and col.codelist and not col.masked:
        label = get_catalog().codelists[col.codelist].values.get(str(v))
        return label if label is not None else v
    if col.type == "date" and isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            return v
    return v


# A cell starting with one of these is run as a formula by spreadsheet programs opening a CSV (OWASP
# "CSV injection"); tab and CR too, since some programs strip them first.
FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
# Workbooks never turn text into formulas, whatever a label or a typed value starts with.
WORKBOOK_OPTIONS = {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}


def csv_safe(v: object) -> object:
    """Text a spreadsheet would run as a formula is quoted with a leading apostrophe; numbers pass."""
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_LEAD) else v


def header(col: OutColumn, for_filling: bool = False) -> str:
    return col.label + ("*" if for_filling and col.kind == "gap" and col.required else "")


def source_zh(source: str | None) -> str:
    if not source:
        return ""
    if source.startswith("department:"):
        d = get_catalog().departments.get(source.split(":", 1)[1])
        return f"部门系统：{d.name}" if d else source
    return SOURCE_ZH.get(source, source)


def _sheet_name(wb, name: str) -> str:
    base = "".join(ch for ch in name if ch not in "[]:*?/\\")[:28] or "报表"
    existing = {ws.get_name() for ws in wb.worksheets()}
    out, i = base, 2
    while out in existing:
        out, i = f"{base[:25]}({i})", i + 1
    return out


def write_sheet(
    wb,
    name: str,
    cols: list[OutColumn],
    rows,
    *,
    key_header: str | None = None,
    for_filling: bool = False,
    township: bool = False,
    total: dict | None = None,
) -> None:
    """rows: report_row-like objects (row_key, label, data, gaps) or aggregate items (key, label, cells)."""
    ws = wb.add_worksheet(_sheet_name(wb, name))
    bold = wb.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True})
    gap_head = wb.add_format({"bold": True, "bg_color": "#FFF2CC", "border": 1, "text_wrap": True})
    gap_cell = wb.add_format({"bg_color": "#FFF2CC", "locked": False})
    gap_date = wb.add_format({"bg_color": "#FFF2CC", "locked": False, "num_format": "yyyy-mm-dd"})
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    heads: list[str] = []
    if key_header:
        heads.append(key_header)
    if township:
        heads.append("镇街")
    has_label = any(_label(r) for r in rows) or total is not None
    if has_label:
        heads.append("行名称")
    lead = len(heads)
    for i, h in enumerate(heads):
        ws.write_string(0, i, h, bold)
    for j, c in enumerate(cols):  # labels come from the department: text, never a formula
        ws.write_string(0, lead + j, header(c, for_filling), gap_head if c.kind == "gap" else bold)
        ws.set_column(lead + j, lead + j, max(10, min(30, len(c.label) * 2 + 2)))
        if c.help and for_filling:
            ws.write_comment(0, lead + j, c.help)
    all_rows = [*rows, *([total] if total else [])]
    for i, r in enumerate(all_rows, start=1):
        cells = _cells(r, cols)
        k = 0
        if key_header:
            ws.write_string(i, k, str(_key(r)))
            k += 1
        if township:
            ws.write_string(i, k, (r.get("township_name") if isinstance(r, dict) else None) or "")
            k += 1
        if has_label:
            ws.write_string(i, k, str(_label(r) or ""))
            k += 1
        for j, c in enumerate(cols):
            v = display(c, cells.get(c.code))
            fmt = (
                (gap_date if c.type == "date" else gap_cell)
                if (for_filling and c.kind == "gap")
                else (date_fmt if isinstance(v, date) else None)
            )
            if isinstance(v, date):
                ws.write_datetime(i, lead + j, datetime.combine(v, datetime.min.time()), fmt)
            elif v is None:
                ws.write_blank(i, lead + j, None, fmt)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                ws.write_number(i, lead + j, v, fmt)
            else:
                ws.write_string(i, lead + j, str(v), fmt)
    ws.freeze_panes(1, lead)
    if key_header:
        ws.set_column(0, 0, 14)
        if for_filling:  # pre-filled cells are read-only: change the ledger, then refresh the task
            ws.protect("", {"format_columns": True, "autofilter": True, "sort": False})


def _key(r) -> object:
    return r["key"] if isinstance(r, dict) else r.row_key


def _label(r) -> str | None:
    return r.get("label") if isinstance(r, dict) else r.label


def _cells(r, cols: list[OutColumn]) -> dict:
    if isinstance(r, dict):
        return r["cells"]
    gaps = getattr(r, "gaps", None) or {}
    return {c.code: gaps.get(c.code) if c.kind == "gap" else r.data.get(c.code) for c in cols}


def _outcols(result: dict) -> list[OutColumn]:
    out = []
    for c in result["columns"]:
        o = OutColumn(
            c["code"],
            c["label"],
            c["kind"],
            c["type"],
            path=c.get("path"),
            ledger_field=c.get("ledger_field"),
            source=c.get("source"),
            masked=c.get("masked", False),
            codelist=c.get("codelist"),
            required=c.get("required", False),
            fn=c.get("fn"),
        )
        out.append(o)
    return out


def to_csv(result: dict) -> bytes:
    cols = _outcols(result)
    buf = io.StringIO()
    w = csv.writer(buf)
    per_township = (bool(result["tasks"]) and result["template"]["kind"] == "list") or any(
        "township_name" in it for it in result["items"]
    )
    w.writerow([*(["镇街"] if per_township else []), "行名称", *[csv_safe(c.label) for c in cols]])
    for it in [*result["items"], *([result["total"]] if result.get("total") else [])]:
        vals = []
        for c in cols:
            v = display(c, it["cells"].get(c.code))
            vals.append("" if v is None else v.isoformat() if isinstance(v, date) else csv_safe(v))
        w.writerow(
            [*([it.get("township_name", "")] if per_township else []), csv_safe(it.get("label") or ""), *vals]
        )
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens UTF-8 CSV with Chinese intact


def to_xlsx(result: dict) -> bytes:
    cols = _outcols(result)
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, WORKBOOK_OPTIONS)
    name = result["template"]["name"]
    per_township = any("township_name" in it for it in result["items"])
    write_sheet(wb, name, cols, result["items"], township=per_township, total=result.get("total"))
    _provenance_sheet(wb, result, cols)
    wb.close()
    return buf.getvalue()


def _provenance_sheet(wb, result: dict, cols: list[OutColumn]) -> None:
    ws = wb.add_worksheet("数据来源")
    bold = wb.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1})
    t = result["template"]
    dept = get_catalog().departments.get(t["department_code"])
    meta = [
        ("报表", t["name"]),
        ("模板代码", t["code"]),
        ("模板版本", t["version"]),
        ("所属部门", dept.name if dept else t["department_code"]),
        ("报告期", result.get("period") or "—"),
        ("生成时间", str(result["generated_at"])[:19]),
        ("数据方式", "台账直取（无需镇街填报）" if t["pull_only"] else "镇街任务汇总"),
    ]
    for i, (k, v) in enumerate(meta):
        ws.write_string(i, 0, k, bold)
        ws.write(i, 1, v)  # template name and code: text (the workbook never makes formulas of text)
    r = len(meta) + 1
    for j, h in enumerate(["列代码", "列名", "类型", "台账字段", "数据来源"]):
        ws.write(r, j, h, bold)
    for c in cols:
        r += 1
        ws.write_row(
            r,
            0,
            [
                c.code,
                c.label,
                KIND_ZH.get(c.kind, c.kind),
                c.ledger_field or c.path or "",
                source_zh(c.source)
                if c.kind == "field"
                else (
                    "镇街填报" + ("，写回台账" if c.ledger_field else "") if c.kind == "gap" else "由台账计算"
                ),
            ],
        )
    if result["tasks"]:
        r += 2
        for j, h in enumerate(["镇街", "状态", "是否计入", "行数", "预填时间", "提交时间", "审核通过时间"]):
            ws.write(r, j, h, bold)
        for task in result["tasks"]:
            r += 1
            ws.write_row(
                r,
                0,
                [
                    task["township_name"],
                    STATE_ZH.get(task["state"], task["state"]),
                    "是" if task["included"] else "否",
                    task["rows"],
                    *(
                        str(task[k])[:19] if task[k] else ""
                        for k in ("prefilled_at", "submitted_at", "approved_at")
                    ),
                ],
            )
    ws.set_column(0, 6, 18)
