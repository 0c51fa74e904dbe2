"""Rules across cells of a row: a gap column required only when the row meets a condition
(`required_when`, e.g. 走访户数 required when 残疾人数 > 0) and cross-column checks (`visited <= households`),
checked when the template is defined, when cells are saved (JSON and XLSX) and at submit; each failure
names the row, the column and the rule in Chinese."""

from __future__ import annotations

import io

import pytest
import xlsxwriter
from python_calamine import CalamineWorkbook
from sqlalchemy import select

from app.report import formula as fm
from app.report.models import ReportCell
from app.report.tasks.xlsx import KEY_HEADER, TASK_PROPERTY
from tests.report.conftest import VILLAGE_A2
from tests.report.test_workflow import TASKS, T, ok, problem
from tests.world import VILLAGE_A, A

VISITS = {
    "code": "visits_by_village",
    "name": "残疾人走访情况（按村）",
    "kind": "aggregate",
    "ledger": "person",
    "rows": {"by": "village"},
    "columns": [
        {
            "kind": "aggregate",
            "code": "disabled",
            "label": "残疾人数",
            "fn": "count",
            "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
        },
        {
            "kind": "aggregate",
            "code": "alone",
            "label": "独居老人数",
            "fn": "count",
            "filter": [{"path": "elderly_living_alone", "op": "eq", "value": True}],
        },
        {
            "kind": "gap",
            "code": "visited",
            "label": "走访户数",
            "type": "integer",
            "min": 0,
            "required_when": "disabled > 0",
        },
        {
            "kind": "gap",
            "code": "alone_visited",
            "label": "独居老人走访数",
            "type": "integer",
            "required_when": "alone > 0 and not (alone = 0)",
        },
        {"kind": "gap", "code": "note", "label": "说明", "type": "text", "max_length": 100},
    ],
    "rules": [{"expr": "visited <= disabled", "message": "走访户数不能多于残疾人数"}],
}


def test_condition_grammar_is_bounded_and_three_valued():
    node = fm.parse_condition("(a + b) * 2 >= c and (x > 0 or not y != 1)")
    assert fm.refs(node) == {"a", "b", "c", "x", "y"}
    D = fm.Decimal
    assert fm.holds(node, {"a": D(1), "b": D(1), "c": D(4), "x": D(0), "y": D(1)}) is True
    assert fm.holds(node, {"a": D(1), "b": D(1), "c": D(5), "x": D(1), "y": D(1)}) is False
    assert fm.holds(node, {"a": None, "b": D(1), "c": D(1), "x": D(1), "y": D(1)}) is None  # empty: unknown
    for bad in ("a +", "a > ", "a and b", "a > 1 and", "(a > 1", "a >> 1", "import os", "a > 1 ;"):
        with pytest.raises(fm.FormulaError):
            fm.parse_condition(bad)
    with pytest.raises(fm.FormulaError):
        fm.parse_condition("(" * 40 + "a > 1" + ")" * 40)
    with pytest.raises(fm.FormulaError):
        fm.parse("a > 1")  # a column formula is arithmetic only
    assert (
        fm.describe(
            fm.parse_condition("visited <= disabled"), {"visited": "走访户数", "disabled": "残疾人数"}
        )
        == "走访户数 ≤ 残疾人数"
    )


async def test_bad_rules_are_refused_at_definition_with_their_paths(client, world, people):
    body = {
        **VISITS,
        "columns": [
            *VISITS["columns"][:2],
            {**VISITS["columns"][2], "required_when": "disabled >"},
            {**VISITS["columns"][3], "required_when": "alone_visited > 0"},
            VISITS["columns"][4],
        ],
        "rules": [
            {"expr": "visited <= nobody", "message": "甲"},
            {"expr": "note > 1", "message": "乙"},
            {"expr": "disabled >= alone", "message": "丙"},
            {"expr": "visited <= disabled", "message": "丁", "column": "nope"},
        ],
    }
    r = problem(await client.post(T, json=body, headers=world.dept), 422, "validation.failed")
    got = {(e["path"], e["code"]) for e in r["errors"]}
    assert got == {
        ("body.columns.2.required_when", "formula.syntax"),
        ("body.columns.3.required_when", "rule.self_reference"),
        ("body.rules.0.expr", "rule.unknown_column"),
        ("body.rules.1.expr", "rule.not_numeric"),
        ("body.rules.2.expr", "rule.no_gap"),
        ("body.rules.3.column", "rule.unknown_column"),
    }
    assert all(e["message"] for e in r["errors"])
    # Shape errors come from the DSL: an empty message is refused like any other field.
    r = problem(
        await client.post(
            T, json={**VISITS, "rules": [{"expr": "visited <= disabled", "message": ""}]}, headers=world.dept
        ),
        422,
        "validation.failed",
    )
    assert r["errors"][0]["path"] == "body.rules.0.message"


def _sheet(
    content: bytes, task: int, values: dict[str, dict[str, object]], extra: list[dict[str, object]] = ()
) -> bytes:
    grid = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_index(0).to_python()
    head = [str(h) for h in grid[0]]
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    wb.set_custom_property(TASK_PROPERTY, f"report-task:{task}")
    ws = wb.add_worksheet()
    for j, h in enumerate(head):
        ws.write(0, j, h)
    for i, line in enumerate(grid[1:], start=1):
        for j, v in enumerate(line):
            v = values.get(str(line[0]), {}).get(head[j].rstrip("*"), v)
            if v not in (None, ""):
                ws.write(i, j, v)
    for i, line in enumerate(extra, start=len(grid)):
        for j, h in enumerate(head):
            if h.rstrip("*") in line:
                ws.write(i, j, line[h.rstrip("*")])
    wb.close()
    assert head[0] == KEY_HEADER
    return buf.getvalue()


async def test_rules_at_save_upload_and_submit(client, world, people, session):
    tpl = await ok(await client.post(T, json=VISITS, headers=world.dept), 201)
    await ok(await client.post(f"{T}/{tpl['id']}/submit", headers=world.dept))
    await ok(await client.post(f"{T}/{tpl['id']}/approve", headers=world.admin))
    d = await ok(
        await client.post(f"{T}/{tpl['id']}/dispatch", json={"period": "2026-11"}, headers=world.dept)
    )
    task = next(t["id"] for t in d["tasks"] if t["township_code"] == A + "000")
    view = await ok(await client.get(f"{TASKS}/{task}", headers=world.a))
    rows = {r["key"]: r for r in view["items"]}
    assert rows[VILLAGE_A]["cells"]["disabled"] == 2 and rows[VILLAGE_A2]["cells"]["disabled"] == 1
    assert {r["cells"]["alone"] for r in rows.values()} == {0}
    # The grid gets the rules with the columns: conditions, messages, columns they read.
    cols = {c["code"]: c for c in view["columns"]}
    assert cols["visited"]["required_when"]["expr"] == "disabled > 0"
    assert cols["visited"]["required_when"]["message"] == "当“残疾人数 > 0”时必填"
    assert "required_when" not in cols["note"]
    assert view["rules"] == [
        {
            "kind": "check",
            "expr": "visited <= disabled",
            "column": "visited",
            "columns": ["disabled", "visited"],
            "message": "走访户数不能多于残疾人数",
        }
    ]

    # Save: a cell breaking a rule is refused with the row, the column and the rule; nothing is saved.
    bad = problem(
        await client.put(
            f"{TASKS}/{task}/cells",
            headers=world.a,
            json={
                "cells": [
                    {"row": VILLAGE_A, "column": "note", "value": "已走访"},
                    {"row": VILLAGE_A, "column": "visited", "value": 5},
                ]
            },
        ),
        422,
        "report.cells_invalid",
    )
    assert [(e["path"], e["code"]) for e in bad["errors"]] == [("body.cells.1.value", "rule.failed")]
    assert bad["errors"][0]["message"] == "第 1 行“走访户数”：走访户数不能多于残疾人数"
    assert bad["cells"][0]["column_label"] == "走访户数" and bad["cells"][0]["row_key"] == VILLAGE_A
    assert (await session.scalars(select(ReportCell).where(ReportCell.task_id == task))).all() == []
    await ok(
        await client.put(
            f"{TASKS}/{task}/cells",
            headers=world.a,
            json={"cells": [{"row": VILLAGE_A, "column": "visited", "value": 2}]},
        )
    )

    # Submit: the conditionally required cell of row 2 is empty (残疾人数 1 > 0); 独居 stays optional.
    body = problem(await client.post(f"{TASKS}/{task}/submit", headers=world.a), 422, "report.rules_failed")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [
        (f"rows.{VILLAGE_A2}.visited", "rule.required_when")
    ]
    assert body["errors"][0]["message"] == "第 2 行“走访户数”：当“残疾人数 > 0”时必填"
    assert body["failure_count"] == 1 and body["rows"][0]["row"] == 2

    # Upload: the bad cell is rejected and kept with its sheet position; the good ones are saved.
    sheet = await client.get(f"{TASKS}/{task}/xlsx", headers=world.a)
    # A line added below with a row key far over 40 characters: reported, not kept (it is no row of
    # this task, so nothing could ever fix it), and no server error.
    filled = _sheet(
        sheet.content,
        task,
        {VILLAGE_A: {"走访户数": 1}, VILLAGE_A2: {"走访户数": 9}},
        extra=[{KEY_HEADER: "9" * 60, "走访户数": 3}],
    )
    up = await ok(
        await client.post(
            f"{TASKS}/{task}/xlsx",
            headers=world.a,
            files={"file": ("t.xlsx", filled, "application/octet-stream")},
        )
    )
    assert up["saved"] == 1 and up["rejected"] == 2
    assert [(x["code"], x["row_key"][:12]) for x in up["rejects"]] == [
        ("cell.row_unknown", "9" * 12),
        ("rule.failed", VILLAGE_A2),
    ]
    up["rejects"] = up["rejects"][1:]
    assert up["rejects"][0]["reason"] == "第 2 行“走访户数”：走访户数不能多于残疾人数"
    body = problem(
        await client.post(f"{TASKS}/{task}/submit", headers=world.a), 422, "report.rejects_pending"
    )
    assert [e["path"] for e in body["errors"]] == [f"rows.{VILLAGE_A2}.visited"]

    # Fixed through the API: the reject goes, and the task submits.
    await ok(
        await client.put(
            f"{TASKS}/{task}/cells",
            headers=world.a,
            json={"cells": [{"row": VILLAGE_A2, "column": "visited", "value": 1}]},
        )
    )
    assert (await ok(await client.post(f"{TASKS}/{task}/submit", headers=world.a)))["state"] == "submitted"
