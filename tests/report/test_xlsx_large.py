"""A task at real size: 20,000 rows × 30 columns downloads as XLSX, and the filled workbook uploads and
saves (200,000 gap cells in one request: more than PostgreSQL's 65,535 bind parameters in one
statement), with the same per-cell checks as JSON saves: bad cells are kept as rejects with their
sheet position. Rows are seeded with one INSERT … SELECT generate_series, not through the API."""

from __future__ import annotations

import io

import xlsxwriter
from python_calamine import CalamineWorkbook
from sqlalchemy import func, select, text

from app.report.models import ReportCell, ReportReject
from app.report.tasks.xlsx import KEY_HEADER, TASK_PROPERTY
from tests.report.test_workflow import TASKS, T, ok
from tests.world import VILLAGE_A, A

ROWS = 20_000
FIELDS = [
    "name",
    "sex",
    "birth_date",
    "ethnicity",
    "household_type",
    "marital_status",
    "political_status",
    "employment_status",
    "elderly_living_alone",
    "is_veteran",
    "death_date",
    "remark",
]
GAPS = [
    {"kind": "gap", "code": "g_visits", "label": "走访次数", "type": "integer", "min": 0, "max": 31},
    {"kind": "gap", "code": "g_members", "label": "家庭人数", "type": "integer", "min": 0, "max": 30},
    {"kind": "gap", "code": "g_rooms", "label": "房间数", "type": "integer", "min": 0},
    {"kind": "gap", "code": "g_floor", "label": "楼层", "type": "integer"},
    {"kind": "gap", "code": "g_income", "label": "月收入（元）", "type": "decimal", "min": 0},
    {"kind": "gap", "code": "g_area", "label": "核实面积", "type": "decimal", "scale": 1},
    {"kind": "gap", "code": "g_note", "label": "走访备注", "type": "text", "max_length": 50},
    {"kind": "gap", "code": "g_contact", "label": "联系人", "type": "text", "max_length": 20},
    {"kind": "gap", "code": "g_ok", "label": "是否正常", "type": "boolean"},
    {"kind": "gap", "code": "g_date", "label": "走访日期", "type": "date"},
]
BIG = {
    "code": "big_list",
    "name": "大表",
    "kind": "list",
    "ledger": "person",
    "columns": [
        *[{"kind": "field", "code": f, "path": f} for f in FIELDS],
        {"kind": "field", "code": "address", "path": "residence.standard_address"},
        {"kind": "field", "code": "area", "path": "residence.floor_area"},
        *[
            {"kind": "formula", "code": f"area{k}", "label": f"面积×{k}", "expr": f"area * {k}"}
            for k in range(2, 8)
        ],
        *GAPS,
    ],
}


def _value(code: str, i: int) -> object:
    return {
        "g_visits": i % 31,
        "g_members": i % 7 + 1,
        "g_rooms": i % 5,
        "g_floor": i % 30 - 2,
        "g_income": 1000 + i % 900 + 0.5,
        "g_area": 50 + i % 100,
        "g_note": f"第{i}户已走访",
        "g_contact": f"联系人{i % 97}",
        "g_ok": i % 2 == 0,
        "g_date": "2026-11-03",
    }[code]


async def test_twenty_thousand_rows_download_and_upload(client, world, people, session):
    assert len(BIG["columns"]) == 30
    tpl = await ok(await client.post(T, json=BIG, headers=world.dept), 201)
    await ok(await client.post(f"{T}/{tpl['id']}/submit", headers=world.dept))
    await ok(await client.post(f"{T}/{tpl['id']}/approve", headers=world.admin))
    d = await ok(
        await client.post(f"{T}/{tpl['id']}/dispatch", json={"period": "2026-11"}, headers=world.dept)
    )
    task = next(t["id"] for t in d["tasks"] if t["township_code"] == A + "000")
    # 20,000 pre-filled rows in one statement (row keys like record ids).
    await session.execute(text("DELETE FROM report_row WHERE task_id = :t"), {"t": task})
    await session.execute(
        text("""
        INSERT INTO report_row (task_id, row_key, row_no, label, record_id, region_code, data, prov, links)
        SELECT :t, (1000000 + g)::text, g, NULL, NULL, :village,
               jsonb_build_object('name', '张' || g, 'sex', (1 + g % 2)::text, 'birth_date', '1960-01-01',
                                  'ethnicity', '01', 'remark', '预填' || g, 'address', '某村' || g || '号',
                                  'area', 60 + g % 90, 'area2', (60 + g % 90) * 2, 'area3', (60 + g % 90) * 3,
                                  'area4', (60 + g % 90) * 4, 'area5', (60 + g % 90) * 5, 'area6', (60 + g % 90) * 6,
                                  'area7', (60 + g % 90) * 7),
               '{}', '{}'
        FROM generate_series(1, :n) AS g"""),
        {"t": task, "village": VILLAGE_A, "n": ROWS},
    )
    await session.execute(text("UPDATE report_task SET row_count = :n WHERE id = :t"), {"t": task, "n": ROWS})
    await session.flush()

    r = await client.get(f"{TASKS}/{task}/xlsx", headers=world.a)
    assert r.status_code == 200, r.text
    grid = CalamineWorkbook.from_filelike(io.BytesIO(r.content)).get_sheet_by_index(0).to_python()
    head = [str(h) for h in grid[0]]
    assert len(grid) == ROWS + 1 and head[0] == KEY_HEADER
    assert {g["label"] for g in GAPS} <= set(head) and len(head) >= 31
    assert grid[1][head.index("姓名")] == "张1" and grid[ROWS][0] == str(1000000 + ROWS)

    # Every gap cell filled; three bad ones: out of range, not a date, longer than the column allows.
    bad = {(5, "g_visits"): 99, (7, "g_date"): "下周", (9, "g_note"): "很" * 60}
    at = {g["code"]: head.index(g["label"]) for g in GAPS}
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "constant_memory": False})
    wb.set_custom_property(TASK_PROPERTY, f"report-task:{task}")
    ws = wb.add_worksheet()
    for j, h in enumerate(head):
        ws.write_string(0, j, h)
    for i, line in enumerate(grid[1:], start=1):
        ws.write_string(i, 0, str(line[0]))
        for code, j in at.items():
            v = bad.get((i, code), _value(code, i))
            ws.write(i, j, v)
    wb.close()

    up = await ok(
        await client.post(
            f"{TASKS}/{task}/xlsx",
            headers=world.a,
            files={"file": ("t.xlsx", buf.getvalue(), "application/octet-stream")},
        )
    )
    assert up["rows_read"] == ROWS and up["columns_read"] == len(GAPS)
    assert up["saved"] == ROWS * len(GAPS) - len(bad) and up["rejected"] == len(bad)
    assert {(x["row"], x["column_code"]) for x in up["rejects"]} == {(i + 1, c) for i, c in bad}
    stored = await session.scalar(
        select(func.count()).select_from(ReportCell).where(ReportCell.task_id == task)
    )
    assert stored == ROWS * len(GAPS) - len(bad)
    kept = (
        await session.execute(
            select(ReportReject.row_key, ReportReject.column, ReportReject.code).where(
                ReportReject.task_id == task
            )
        )
    ).all()
    assert {(k, c) for k, c, _ in kept} == {(str(1000000 + i), c) for i, c in bad}
    assert {code for *_, code in kept} >= {"range.above"}
    one = await session.scalar(
        select(ReportCell.value).where(
            ReportCell.task_id == task,
            ReportCell.row_key == str(1000000 + ROWS),
            ReportCell.column == "g_note",
        )
    )
    assert one == f"第{ROWS}户已走访"
