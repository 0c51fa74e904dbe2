"""Report inputs that must neither stop the service nor corrupt what others open: department regex
patterns, formula-looking text in exports, another task's workbook, approval after grants change."""

from __future__ import annotations

import csv
import io
import zipfile

from sqlalchemy import select

from app.access.models import Grant
from app.org.models import OrgUnit
from tests.report.test_workflow import fill_sheet, ok, problem
from tests.world import A

T = "/api/v1/report-templates"
TASKS = "/api/v1/report-tasks"


def _template(code: str, name: str, gaps: list[dict], *, label: str | None = None) -> dict:
    name_col = {"kind": "field", "code": "name", "path": "name"} | ({"label": label} if label else {})
    return {
        "code": code,
        "name": name,
        "kind": "list",
        "ledger": "person",
        "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
        "columns": [name_col, *gaps],
    }


async def _dispatched(client, world, spec: dict, *periods: str) -> dict[str, int]:
    """Define, submit, approve and dispatch; township A's task id per period."""
    tid = (await ok(await client.post(T, json=spec, headers=world.dept), 201))["id"]
    await ok(await client.post(f"{T}/{tid}/submit", headers=world.dept))
    await ok(await client.post(f"{T}/{tid}/approve", headers=world.admin))
    out = {}
    for period in periods:
        d = await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": period}, headers=world.dept))
        out[period] = next(t["id"] for t in d["tasks"] if t["township_code"] == A + "000")
    return out | {"template": tid}


# ---- item 10: ReDoS ---------------------------------------------------------------------------


async def test_item10_gap_pattern_runs_in_linear_time(client, world, people):
    from app.catalog.validators import compile_pattern

    # The engine for a department's pattern is RE2 (linear time), not Python's backtracking re.
    assert type(compile_pattern("(a|a)*b")).__module__.startswith("re2")
    spec = _template(
        "redos",
        "正则检查",
        [{"kind": "gap", "code": "tag", "label": "标记", "type": "text", "pattern": "(a|a)*b"}],
    )
    ids = await _dispatched(client, world, spec, "2026-11")
    task = ids["2026-11"]
    view = await ok(await client.get(f"{TASKS}/{task}", headers=world.a))
    keys = [r["key"] for r in view["items"]]
    # The adversarial cell (26 × 'a' then a non-match) is refused promptly and precisely ...
    bad = await client.put(
        f"{TASKS}/{task}/cells",
        headers=world.a,
        json={"cells": [{"row": keys[0], "column": "tag", "value": "a" * 26 + "c"}]},
    )
    body = problem(bad, 422, "report.cells_invalid")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [("body.cells.0.value", "regex.mismatch")]
    # ... while matching values are saved, in bulk and one by one.
    saved = await ok(
        await client.put(
            f"{TASKS}/{task}/cells",
            headers=world.a,
            json={"cells": [{"row": k, "column": "tag", "value": "a" * 40 + "b"} for k in keys]},
        )
    )
    assert saved["saved"] == len(keys)
    await ok(await client.put(f"{TASKS}/{task}/cells/{keys[0]}/tag", headers=world.a, json={"value": "b"}))
    # The same through an uploaded sheet: the adversarial cell is kept as a reject, the rest saved.
    sheet = (await client.get(f"{TASKS}/{task}/xlsx", headers=world.a)).content
    up = await ok(
        await client.post(
            f"{TASKS}/{task}/xlsx",
            headers=world.a,
            files={
                "file": (
                    "t.xlsx",
                    fill_sheet(sheet, {keys[1]: {"标记": "a" * 26 + "c"}}),
                    "application/octet-stream",
                )
            },
        )
    )
    assert up["rejected"] == 1 and up["rejects"][0]["code"] == "regex.mismatch"


async def test_item10_pattern_re2_cannot_run_is_refused_at_admission(client, world, people):
    gaps = [
        {"kind": "gap", "code": "ok", "label": "正常", "type": "text", "pattern": "[0-9]{4}"},
        {"kind": "gap", "code": "tag", "label": "标记", "type": "text", "pattern": r"(a)\1"},
    ]
    r = await client.post(T, json=_template("backref", "反向引用", gaps), headers=world.dept)
    body = problem(r, 422, "validation.failed")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [
        ("body.columns.2.pattern", "template.gap_pattern")
    ]
    # The same on update of an existing template, and a good pattern still passes.
    tpl = await ok(
        await client.post(T, json=_template("backref", "反向引用", gaps[:1]), headers=world.dept), 201
    )
    r = await client.put(f"{T}/{tpl['id']}", json=_template("backref", "反向引用", gaps), headers=world.dept)
    assert [e["path"] for e in problem(r, 422, "validation.failed")["errors"]] == ["body.columns.2.pattern"]


# ---- item 12: formula injection ---------------------------------------------------------------

EVIL = ["=cmd|' /C calc'!A0", "@SUM(1,1)", "\t=1+1", "+1+1", "-2+3", "\r=1+1"]


def _sheet_xml(content: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return {n: z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/")}


async def test_item12_no_live_formulas_in_csv_or_xlsx(client, world, people):
    spec = _template(
        "inject",
        '=HYPERLINK("http://x","点击")',
        [{"kind": "gap", "code": "note", "label": "+备注", "type": "text"}],
        label="=1+2",
    )
    ids = await _dispatched(client, world, spec, "2026-11")
    task, tid = ids["2026-11"], ids["template"]
    # The township's sheet: department labels are text cells, never formulas.
    sheet = await client.get(f"{TASKS}/{task}/xlsx", headers=world.a)
    xml = _sheet_xml(sheet.content)
    assert xml and not any("<f>" in x for x in xml.values())
    with zipfile.ZipFile(io.BytesIO(sheet.content)) as z:
        strings = z.read("xl/sharedStrings.xml").decode()
    assert "=1+2" in strings and "+备注" in strings
    # The township types formula-looking values; the department's CSV escapes them, its XLSX holds text.
    view = await ok(await client.get(f"{TASKS}/{task}", headers=world.a))
    keys = [r["key"] for r in view["items"]]
    await ok(
        await client.put(
            f"{TASKS}/{task}/cells",
            headers=world.a,
            json={
                "cells": [
                    {"row": k, "column": "note", "value": EVIL[i % len(EVIL)]} for i, k in enumerate(keys)
                ]
            },
        )
    )
    params = {"period": "2026-11", "states": "in_progress", "format": "csv"}
    r = await client.get(f"{T}/{tid}/aggregate", params=params, headers=world.dept)
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    head, body = rows[0], rows[1:]
    assert "'=1+2" in head and "'+备注" in head
    stored = await ok(await client.get(f"{TASKS}/{task}", headers=world.a))
    typed = sorted(i["cells"]["note"] for i in stored["items"])
    assert len(typed) == 3 and typed[-1].startswith("@")
    assert sorted(line[head.index("'+备注")] for line in body) == ["'" + v for v in typed]
    assert all(not cell or cell[0] not in "=+-@\t\r" for line in rows for cell in line)
    assert any(line[head.index("'=1+2")].startswith("李") for line in body)  # ordinary text untouched
    x = await client.get(f"{T}/{tid}/aggregate", params=params | {"format": "xlsx"}, headers=world.dept)
    xml = _sheet_xml(x.content)
    assert len(xml) == 2 and not any("<f>" in s for s in xml.values())
    with zipfile.ZipFile(io.BytesIO(x.content)) as z:
        strings = z.read("xl/sharedStrings.xml").decode()
    assert all(v in strings for v in ("=cmd|", "@SUM(1,1)", '=HYPERLINK("http://x"', "=1+2"))


# ---- item 16: another task's workbook ---------------------------------------------------------


async def test_item16_upload_of_another_tasks_workbook_is_refused(client, world, people):
    spec = _template(
        "two", "两期走访", [{"kind": "gap", "code": "visited", "label": "是否走访", "type": "boolean"}]
    )
    ids = await _dispatched(client, world, spec, "2026-11", "2026-12")
    nov, dec = ids["2026-11"], ids["2026-12"]
    sheet = (await client.get(f"{TASKS}/{nov}/xlsx", headers=world.a)).content
    with zipfile.ZipFile(io.BytesIO(sheet)) as z:  # the download names its task
        assert f"report-task:{nov}" in z.read("docProps/custom.xml").decode()
    view = await ok(await client.get(f"{TASKS}/{nov}", headers=world.a))
    filled = fill_sheet(sheet, {r["key"]: {"是否走访": "是"} for r in view["items"]})
    # fill_sheet rebuilds the workbook: carry the marker like Excel / WPS keep custom properties.
    wrong = _rebuilt(filled, nov)
    r = await client.post(
        f"{TASKS}/{dec}/xlsx", headers=world.a, files={"file": ("t.xlsx", wrong, "application/octet-stream")}
    )
    body = problem(r, 422, "task.workbook_mismatch")
    assert "两期走访" in body["errors"][0]["message"] and "2026-12" in body["errors"][0]["message"]
    assert body["errors"][0]["path"] == "file"
    dec_view = await ok(await client.get(f"{TASKS}/{dec}", headers=world.a))
    assert all(i["cells"]["visited"] is None for i in dec_view["items"])  # nothing was saved
    # A rebuilt sheet without the marker whose row keys are none of this task's is refused the same way.
    r = await client.post(
        f"{TASKS}/{dec}/xlsx",
        headers=world.a,
        files={"file": ("t.xlsx", _rebuilt(filled, None, key_offset=900000), "application/octet-stream")},
    )
    problem(r, 422, "task.workbook_mismatch")
    # The right task takes it.
    up = await ok(
        await client.post(
            f"{TASKS}/{nov}/xlsx",
            headers=world.a,
            files={"file": ("t.xlsx", wrong, "application/octet-stream")},
        )
    )
    assert up["saved"] == len(view["items"])


def _rebuilt(content: bytes, task_id: int | None, key_offset: int = 0) -> bytes:
    """The sheet written anew, with the task marker (or none) and row keys shifted by key_offset."""
    import xlsxwriter
    from python_calamine import CalamineWorkbook

    grid = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_index(0).to_python()
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    if task_id is not None:
        wb.set_custom_property("onetable_task", f"report-task:{task_id}")
    ws = wb.add_worksheet()
    for i, line in enumerate(grid):
        for j, v in enumerate(line):
            if i and j == 0 and key_offset:
                v = str(int(float(v)) + key_offset)
            if v not in (None, ""):
                ws.write(i, j, v)
    wb.close()
    return buf.getvalue()


# ---- item 20: approval after grants are given ------------------------------------------------


async def test_item20_approval_reanalyses_after_grant(client, world, people, session):
    unit = (await session.scalars(select(OrgUnit).where(OrgUnit.code == "dept:cl"))).one()
    session.add(
        Grant(
            grantee_type="org_unit",
            org_unit_id=unit.id,
            ledger="land",
            field="contract_number",
            level="hidden",
            row_scope="own",
            created_by="test",
        )
    )
    await session.flush()
    spec = {
        "code": "land_check",
        "name": "土地核查",
        "kind": "list",
        "ledger": "land",
        "columns": [
            {"kind": "field", "code": "contract", "path": "contract_number"},
            {"kind": "gap", "code": "checked", "label": "是否核查", "type": "boolean"},
        ],
    }
    tid = (await ok(await client.post(T, json=spec, headers=world.dept), 201))["id"]
    sub = await ok(await client.post(f"{T}/{tid}/submit", headers=world.dept))
    assert sub["state"] == "submitted" and sub["analysis"]["ungranted"]
    problem(await client.post(f"{T}/{tid}/approve", headers=world.admin), 409, "report.ungranted_fields")
    session.add(
        Grant(
            grantee_type="org_unit",
            org_unit_id=unit.id,
            ledger="land",
            field="contract_number",
            level="read",
            row_scope="own",
            created_by="test",
        )
    )
    await session.flush()
    done = await ok(await client.post(f"{T}/{tid}/approve", headers=world.admin))
    assert done["state"] == "approved" and done["active_version"] == 1
    assert done["analysis"]["ungranted"] == []  # the fresh analysis is the one stored
