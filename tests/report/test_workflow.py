"""End to end through the HTTP API: define → admission → approve → dispatch → fill (cells, XLSX) → submit →
return with comments → resubmit → approve → aggregate JSON/CSV/XLSX → write-back pre-filled next period."""

from __future__ import annotations

import io

import xlsxwriter
from python_calamine import CalamineWorkbook
from sqlalchemy import select, text

from app.access.audit_models import AuditEntry
from tests.world import A, B

T = "/api/v1/report-templates"
TASKS = "/api/v1/report-tasks"

VISIT = {
    "code": "dis_visit",
    "name": "残疾人走访月报",
    "kind": "list",
    "ledger": "person",
    "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
    "instructions": "核对预填信息，填写本月走访情况。",
    "columns": [
        {"kind": "field", "code": "name", "path": "name"},
        {"kind": "field", "code": "id_number", "path": "id_number"},
        {"kind": "field", "code": "dtype", "path": "disability.disability_type"},
        {"kind": "field", "code": "level", "path": "disability.disability_level"},
        {"kind": "field", "code": "address", "path": "residence.standard_address"},
        {"kind": "field", "code": "area", "path": "residence.floor_area"},
        {"kind": "field", "code": "subsidy", "path": "disability.subsidy_amount"},
        {"kind": "formula", "code": "subsidy_year", "label": "年补贴（元）", "expr": "subsidy * 12"},
        {"kind": "gap", "code": "visited", "label": "本月是否走访", "type": "boolean", "required": True},
        {
            "kind": "gap",
            "code": "visits",
            "label": "走访次数",
            "type": "integer",
            "min": 0,
            "max": 31,
            "help": "本月上门次数",
        },
        {
            "kind": "gap",
            "code": "barrier",
            "label": "是否完成无障碍改造",
            "required": True,
            "write_back": "disability.barrier_free_renovated",
        },
    ],
}


def problem(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code
    return body


async def ok(r, status=200):
    assert r.status_code == status, r.text
    return r.json()


def fill_sheet(content: bytes, values: dict[str, dict[str, object]]) -> bytes:
    """Read a downloaded task sheet with calamine and write it back with some gap cells filled."""
    grid = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_index(0).to_python()
    head = [str(h) for h in grid[0]]
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet()
    for j, h in enumerate(head):
        ws.write(0, j, h)
    for i, line in enumerate(grid[1:], start=1):
        key = str(line[0])
        for j, v in enumerate(line):
            v = values.get(key, {}).get(head[j], v)
            if v not in (None, ""):
                ws.write(i, j, v)
    wb.close()
    return buf.getvalue()


async def test_full_workflow(client, world, people, session):
    # 1. The department defines the template; admission analysis shows coverage and cost.
    tpl = await ok(await client.post(T, json=VISIT, headers=world.dept), 201)
    tid = tpl["id"]
    assert tpl["state"] == "draft" and tpl["pull_only"] is False
    an = await ok(await client.get(f"{T}/{tid}/analysis", headers=world.dept))
    assert an["gap_columns"] == ["visited", "visits", "barrier"] and len(an["covered_columns"]) == 8
    assert {t["township_code"]: t["typed_cells"] for t in an["townships"]} == {A + "000": 9, B + "000": 6}
    assert an["ungranted"] == [] and "disability.disability_type" in an["fields"]
    # Not approvable before submission; dispatch refused before approval.
    problem(await client.post(f"{T}/{tid}/approve", headers=world.admin), 409, "report.bad_state")
    problem(
        await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-11"}, headers=world.dept),
        409,
        "report.not_approved",
    )
    await ok(await client.post(f"{T}/{tid}/submit", headers=world.dept))
    problem(await client.post(f"{T}/{tid}/approve", headers=world.dept), 403, "auth.role_required")
    problem(await client.post(f"{T}/{tid}/refuse", json={}, headers=world.admin), 422, "validation.failed")
    approved = await ok(await client.post(f"{T}/{tid}/approve", headers=world.admin))
    assert approved["state"] == "approved" and approved["active_version"] == 1
    assert [t["to"] for t in approved["transitions"]] == ["draft", "submitted", "approved"]

    # 2. One call dispatches to every township; a second call is a no-op (idempotent).
    problem(
        await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-13"}, headers=world.dept),
        422,
        "validation.failed",
    )
    d = await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-11"}, headers=world.dept))
    assert d["created"] == 2 and {t["rows"] for t in d["tasks"]} == {3, 2}
    again = await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-11"}, headers=world.dept))
    assert again["created"] == 0 and again["existing"] == 2
    # Pre-fill read ID numbers unmasked (the department's grant): each task's read is audited.
    audits = (await session.scalars(select(AuditEntry).where(AuditEntry.path == "report"))).all()
    assert {a.detail["task_id"] for a in audits} == {t["id"] for t in d["tasks"]}
    assert all("id_number" in a.fields for a in audits if a.ledger == "person")
    task_a = next(t["id"] for t in d["tasks"] if t["township_code"] == A + "000")
    task_b = next(t["id"] for t in d["tasks"] if t["township_code"] == B + "000")

    # 3. Township A opens its pre-filled task; B cannot see it.
    mine = await ok(await client.get(TASKS, headers=world.a))
    assert [t["id"] for t in mine["items"]] == [task_a]
    problem(await client.get(f"{TASKS}/{task_a}", headers=world.b), 404, "record.not_found")
    view = await ok(await client.get(f"{TASKS}/{task_a}", headers=world.a))
    assert view["state"] == "in_progress" and view["editable"] and view["missing_required"] == 6
    row = view["items"][0]
    pid = int(row["key"])
    assert row["record"]["href"] == f"/api/v1/ledgers/person/records/{pid}"
    assert row["cells"]["name"].startswith("李") and len(row["cells"]["id_number"]) == 18
    assert row["cells"]["subsidy_year"] == row["cells"]["subsidy"] * 12
    assert row["provenance"]["name"]["source"] == "township:500118101000"
    cols = {c["code"]: c for c in view["columns"]}
    assert cols["name"]["editable"] is False and cols["visited"]["editable"] is True
    assert cols["barrier"]["write_back"] == "disability.barrier_free_renovated"

    # 4. Submit refuses while required gaps are empty, and says which.
    body = problem(
        await client.post(f"{TASKS}/{task_a}/submit", headers=world.a), 422, "report.required_missing"
    )
    assert body["missing_count"] == 6 and body["errors"][0]["path"] == f"rows.{row['key']}.barrier"

    # 5. Precise cell errors: wrong type, out of range, read-only column, unknown row.
    bad = await client.put(
        f"{TASKS}/{task_a}/cells",
        headers=world.a,
        json={
            "cells": [
                {"row": row["key"], "column": "visited", "value": "也许"},
                {"row": row["key"], "column": "visits", "value": 40},
                {"row": row["key"], "column": "name", "value": "改名"},
                {"row": "999999", "column": "visited", "value": True},
            ]
        },
    )
    body = problem(bad, 422, "report.cells_invalid")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [
        ("body.cells.0.value", "boolean.format"),
        ("body.cells.1.value", "range.above"),
        ("body.cells.2.value", "cell.readonly"),
        ("body.cells.3.value", "cell.row_unknown"),
    ]
    assert body["cells"][1]["column_label"] == "走访次数"

    # 6. A fills in bulk (one cell individually), then submits: write-back reaches the ledger.
    keys = [r["key"] for r in view["items"]]
    await ok(
        await client.put(
            f"{TASKS}/{task_a}/cells",
            headers=world.a,
            json={
                "cells": [
                    *({"row": k, "column": "visited", "value": "是"} for k in keys),
                    *({"row": k, "column": "barrier", "value": k == keys[0]} for k in keys),
                ]
            },
        )
    )
    await ok(
        await client.put(f"{TASKS}/{task_a}/cells/{keys[1]}/visits", headers=world.a, json={"value": "3"})
    )
    sub = await ok(await client.post(f"{TASKS}/{task_a}/submit", headers=world.a))
    assert sub["state"] == "submitted" and sub["written_back"] == 3
    problem(
        await client.put(f"{TASKS}/{task_a}/cells/{keys[1]}/visits", headers=world.a, json={"value": 1}),
        409,
        "report.bad_state",
    )
    dis_id = people.disability[int(keys[0])]
    rec = await ok(await client.get(f"/api/v1/ledgers/disability/records/{dis_id}", headers=world.a))
    assert rec["barrier_free_renovated"] is True
    assert rec["provenance"]["barrier_free_renovated"]["source"] == f"report:task:{task_a}"

    # 7. Township B fills through an XLSX round trip; a bad cell is reported by sheet row and column.
    sheet = await client.get(f"{TASKS}/{task_b}/xlsx", headers=world.b)
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith(
        "application/vnd.openxmlformats"
    )
    grid = CalamineWorkbook.from_filelike(io.BytesIO(sheet.content)).get_sheet_by_index(0).to_python()
    head = grid[0]
    assert head[0] == "行键（勿改）" and "本月是否走访*" in head and "姓名" in head
    b_keys = [str(r[0]) for r in grid[1:]]
    # A sheet with one bad cell: the good cells are saved, the bad one is kept with its sheet position.
    wrong = fill_sheet(
        sheet.content, {b_keys[0]: {"本月是否走访*": "maybe", "走访次数": 5}, b_keys[1]: {"走访次数": 1}}
    )
    partial = await ok(
        await client.post(
            f"{TASKS}/{task_b}/xlsx",
            headers=world.b,
            files={"file": ("t.xlsx", wrong, "application/octet-stream")},
        )
    )
    col = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[head.index("本月是否走访*")]
    assert partial["saved"] == 2 and partial["rejected"] == 1
    assert (
        partial["rejects"][0] | {"row": 2, "column": col, "code": "boolean.format"} == partial["rejects"][0]
    )
    vb0 = await ok(await client.get(f"{TASKS}/{task_b}", headers=world.b))
    assert [(r["sheet_cell"], r["raw"], r["column_code"]) for r in vb0["rejects"]] == [
        (f"{col}2", "maybe", "visited")
    ]
    assert {i["key"]: i["cells"]["visits"] for i in vb0["items"]}[b_keys[0]] == 5
    problem(await client.post(f"{TASKS}/{task_b}/submit", headers=world.b), 422, "report.rejects_pending")
    good = fill_sheet(
        sheet.content,
        {k: {"本月是否走访*": "是", "是否完成无障碍改造*": "否", "走访次数": 2} for k in b_keys},
    )
    up = await ok(
        await client.post(
            f"{TASKS}/{task_b}/xlsx",
            headers=world.b,
            files={"file": ("t.xlsx", good, "application/octet-stream")},
        )
    )
    assert up["saved"] == 6 and up["rejected"] == 0
    assert (await ok(await client.get(f"{TASKS}/{task_b}", headers=world.b)))["rejects"] == []
    await ok(await client.post(f"{TASKS}/{task_b}/submit", headers=world.b))

    # 8. The department returns B with a task comment and a cell comment; B fixes and resubmits.
    problem(
        await client.post(f"{TASKS}/{task_b}/return", json={"comment": "x"}, headers=world.b),
        403,
        "report.not_owner",
    )
    await ok(
        await client.post(
            f"{TASKS}/{task_b}/return",
            headers=world.dept,
            json={
                "comment": "走访次数偏少，请核实",
                "cells": [{"row": b_keys[0], "column": "visits", "comment": "应为 4 次"}],
            },
        )
    )
    vb = await ok(await client.get(f"{TASKS}/{task_b}", headers=world.b))
    assert vb["state"] == "returned" and vb["editable"]
    assert {(c["row"], c["column"], c["body"]) for c in vb["comments"]} == {
        (None, None, "走访次数偏少，请核实"),
        (b_keys[0], "visits", "应为 4 次"),
    }
    await ok(
        await client.put(f"{TASKS}/{task_b}/cells/{b_keys[0]}/visits", headers=world.b, json={"value": 4})
    )
    await ok(await client.post(f"{TASKS}/{task_b}/submit", headers=world.b))
    for task in (task_a, task_b):
        await ok(await client.post(f"{TASKS}/{task}/approve", headers=world.dept))
    vb = await ok(await client.get(f"{TASKS}/{task_b}", headers=world.dept))
    assert [t["to"] for t in vb["transitions"]] == [
        "dispatched",
        "in_progress",
        "submitted",
        "returned",
        "submitted",
        "approved",
    ]
    assert all(t["actor"] for t in vb["transitions"])

    # 9. Aggregate: JSON, CSV and XLSX with Chinese headers and a provenance sheet.
    agg = await ok(await client.get(f"{T}/{tid}/aggregate", params={"period": "2026-11"}, headers=world.dept))
    assert agg["complete"] and len(agg["items"]) == 5
    assert {it["township_name"] for it in agg["items"]} == {"临江镇", "何埂镇"}
    by_key = {it["key"]: it["cells"] for it in agg["items"]}
    assert by_key[b_keys[0]]["visits"] == 4 and by_key[keys[1]]["visits"] == 3
    csv = await client.get(
        f"{T}/{tid}/aggregate", params={"period": "2026-11", "format": "csv"}, headers=world.dept
    )
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("镇街,行名称,姓名,公民身份号码,残疾类别") and len(lines) == 6
    assert "是" in lines[1] and ("视力残疾" in csv.text or "听力残疾" in csv.text)
    x = await client.get(
        f"{T}/{tid}/aggregate", params={"period": "2026-11", "format": "xlsx"}, headers=world.dept
    )
    wb = CalamineWorkbook.from_filelike(io.BytesIO(x.content))
    assert wb.sheet_names == ["残疾人走访月报", "数据来源"]
    assert wb.get_sheet_by_index(0).to_python()[0][:3] == ["镇街", "姓名", "公民身份号码"]
    prov = wb.get_sheet_by_name("数据来源").to_python()
    assert ["报表", "残疾人走访月报"] == [str(v) for v in prov[0][:2]]
    assert any(r[0] == "何埂镇" and r[1] == "已通过" for r in prov)

    # 10. Next period: the written-back value arrives pre-filled (and counts as auto-filled).
    d2 = await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-12"}, headers=world.dept))
    task_a2 = next(t["id"] for t in d2["tasks"] if t["township_code"] == A + "000")
    v2 = await ok(await client.get(f"{TASKS}/{task_a2}", headers=world.a))
    first = next(r for r in v2["items"] if r["key"] == keys[0])
    assert first["cells"]["barrier"] is True and first["gap_origin"]["barrier"] == "prefill"
    assert first["cells"]["visited"] is None
    assert v2["missing_required"] == 3  # visited everywhere; barrier is pre-filled for all three

    # 11. Burden metrics are exact: cells, auto-filled and typed.
    m = await ok(await client.get("/api/v1/metrics/burden", headers=world.admin))
    a_row = next(t for t in m["townships"] if t["township_code"] == A + "000")
    # Two tasks of 3 rows × 11 columns; 8 pulled columns each, plus 3 pre-filled barrier cells in period 2.
    assert a_row["tasks"] == 2 and a_row["cells"] == 66
    assert a_row["auto_filled_cells"] == 2 * 3 * 8 + 3
    assert a_row["typed_cells"] == 3 + 3 + 1  # visited ×3, barrier ×3, one visits cell
    assert a_row["auto_fill_ratio"] == round(51 / 66, 4)
    assert a_row["avg_minutes_open_to_submit"] is not None
    dep = next(d for d in m["departments"] if d["period"] == "2026-11")
    assert dep["approved_tasks"] == 2 and dep["minutes_dispatch_to_last_approval"] is not None
    mine = await ok(await client.get("/api/v1/metrics/burden", headers=world.b))
    assert {t["township_code"] for t in mine["townships"]} == {B + "000"}

    # History of the write-back names the task as its source.
    src = (
        (
            await session.execute(
                text(
                    "SELECT source FROM ledger_history WHERE ledger='disability' AND record_id=:r AND field="
                    "'barrier_free_renovated'"
                ),
                {"r": dis_id},
            )
        )
        .scalars()
        .all()
    )
    assert f"report:task:{task_a}" in src
