"""The seed case (11 disability reports → one 28-column template, all from the ledgers: pull-only, zero
typed cells) and aggregate templates (villages / code values, per-column filters, ratios, totals)."""

from __future__ import annotations

import io

from python_calamine import CalamineWorkbook

from tests.report.test_workflow import TASKS, T, ok, problem
from tests.world import VILLAGE_A, VILLAGE_B, A, B

PERSON = [
    "name",
    "id_number",
    "sex",
    "birth_date",
    "ethnicity",
    "phone",
    "household_type",
    "hukou_address",
    "residence_address",
    "marital_status",
]
DISABILITY = [
    "certificate_number",
    "disability_type",
    "disability_level",
    "certificate_issued_on",
    "certificate_valid_until",
    "guardian_name",
    "guardian_phone",
    "living_subsidy",
    "care_subsidy",
    "subsidy_amount",
    "rehabilitation_need",
    "rehabilitation_received",
    "assistive_device",
    "employed",
    "education_level",
    "medical_insurance",
    "pension_insurance",
    "barrier_free_renovated",
]
SEED = {
    "code": "disability_merged",
    "name": "残疾人基本情况（11 表合一）",
    "kind": "list",
    "ledger": "person",
    "period": "quarterly",
    "deadline": {"days_after_period_end": 10},
    "filter": [{"path": "disability.certificate_number", "op": "is_null", "value": False}],
    "columns": [{"kind": "field", "code": c, "path": c} for c in PERSON]
    + [{"kind": "field", "code": f"d_{c}", "path": f"disability.{c}"} for c in DISABILITY],
}


async def test_seed_case_is_pull_only_with_zero_typed_cells(client, world, people):
    assert len(SEED["columns"]) == 28
    tpl = await ok(await client.post(T, json=SEED, headers=world.dept), 201)
    assert tpl["pull_only"] is True
    an = await ok(await client.get(f"{T}/{tpl['id']}/analysis", headers=world.dept))
    assert an["coverage_ratio"] == 1.0 and an["gap_columns"] == [] and an["typed_cells_total"] == 0
    assert all(t["typed_cells"] == 0 for t in an["townships"]) and len(an["covered_columns"]) == 28
    # Submission admits it at once: nothing goes to any township.
    sub = await ok(await client.post(f"{T}/{tpl['id']}/submit", headers=world.dept))
    assert sub["state"] == "approved" and sub["versions"][0]["decided_by"] == "system:admission"
    problem(
        await client.post(f"{T}/{tpl['id']}/dispatch", json={"period": "2026-Q4"}, headers=world.dept),
        409,
        "report.pull_only",
    )
    assert (await ok(await client.get(TASKS, headers=world.a)))["items"] == []
    data = await ok(await client.get(f"{T}/{tpl['id']}/aggregate", headers=world.dept))
    assert data["source"] == "ledger_live" and len(data["items"]) == 5 and len(data["columns"]) == 28
    assert all(it["cells"]["d_certificate_number"] for it in data["items"])
    x = await client.get(f"{T}/{tpl['id']}/aggregate", params={"format": "xlsx"}, headers=world.dept)
    wb = CalamineWorkbook.from_filelike(io.BytesIO(x.content))
    assert len(wb.get_sheet_by_index(0).to_python()) == 6
    sources = {r[4] for r in wb.get_sheet_by_name("数据来源").to_python() if len(r) > 4}
    assert {"市级平台", "部门系统：区残疾人联合会"} <= sources


AGG = {
    "code": "dis_by_village",
    "name": "各村残疾人统计",
    "kind": "aggregate",
    "ledger": "person",
    "rows": {"by": "village"},
    "columns": [
        {"kind": "aggregate", "code": "persons", "label": "人口数", "fn": "count"},
        {
            "kind": "aggregate",
            "code": "disabled",
            "label": "残疾人数",
            "fn": "count",
            "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
        },
        {
            "kind": "aggregate",
            "code": "subsidy",
            "label": "月补贴合计",
            "fn": "sum",
            "path": "disability.subsidy_amount",
        },
        {
            "kind": "aggregate",
            "code": "avg_area",
            "label": "平均住房面积",
            "fn": "avg",
            "path": "residence.floor_area",
        },
        {
            "kind": "aggregate",
            "code": "max_area",
            "label": "最大住房面积",
            "fn": "max",
            "path": "residence.floor_area",
        },
        {
            "kind": "aggregate",
            "code": "types",
            "label": "残疾类别数",
            "fn": "count_distinct",
            "path": "disability.disability_type",
        },
        {
            "kind": "aggregate",
            "code": "ethnic",
            "label": "民族数",
            "fn": "count_distinct",
            "path": "ethnicity",
        },
        {
            "kind": "ratio",
            "code": "share",
            "label": "残疾人占比（%）",
            "numerator": "disabled",
            "denominator": "persons",
        },
        {"kind": "formula", "code": "per_head", "label": "人均补贴", "expr": "subsidy / disabled"},
        {
            "kind": "gap",
            "code": "visits",
            "label": "本月走访人次",
            "type": "integer",
            "required": True,
            "min": 0,
        },
    ],
}


async def test_aggregate_by_village_dispatch_and_totals(client, world, people):
    tid = (await ok(await client.post(T, json=AGG, headers=world.dept), 201))["id"]
    an = await ok(await client.get(f"{T}/{tid}/analysis", headers=world.dept))
    assert {t["township_code"]: t["typed_cells"] for t in an["townships"]} == {A + "000": 2, B + "000": 1}
    await ok(await client.post(f"{T}/{tid}/submit", headers=world.dept))
    await ok(await client.post(f"{T}/{tid}/approve", headers=world.admin))
    d = await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-11"}, headers=world.dept))
    ids = {t["township_code"]: t["id"] for t in d["tasks"]}
    va = await ok(await client.get(f"{TASKS}/{ids[A + '000']}", headers=world.a))
    rows = {r["key"]: r for r in va["items"]}
    assert set(rows) == {VILLAGE_A, A + "202"} and rows[VILLAGE_A]["label"] == "临江村"
    c = rows[VILLAGE_A]["cells"]
    # Village 201: persons 1, 2 (disabled) and 4 (not); subsidies 100 + 200; areas 90, 100, 120.
    assert (c["persons"], c["disabled"], c["subsidy"], c["max_area"], c["types"]) == (3, 2, 300, 120, 2)
    assert c["avg_area"] == round((90 + 100 + 120) / 3, 2) and c["share"] == round(200 / 3, 2)
    assert c["per_head"] == 150
    for township, headers in ((A, world.a), (B, world.b)):
        tid_ = ids[township + "000"]
        view = await ok(await client.get(f"{TASKS}/{tid_}", headers=headers))
        await ok(
            await client.put(
                f"{TASKS}/{tid_}/cells",
                headers=headers,
                json={"cells": [{"row": r["key"], "column": "visits", "value": 5} for r in view["items"]]},
            )
        )
        await ok(await client.post(f"{TASKS}/{tid_}/submit", headers=headers))
    # Only approved tasks count by default; submitted ones on request.
    agg = await ok(await client.get(f"{T}/{tid}/aggregate", params={"period": "2026-11"}, headers=world.dept))
    assert agg["items"] == [] and agg["complete"] is False
    agg = await ok(
        await client.get(
            f"{T}/{tid}/aggregate", params={"period": "2026-11", "states": "submitted"}, headers=world.dept
        )
    )
    assert [it["key"] for it in agg["items"]] == [VILLAGE_A, A + "202", VILLAGE_B]
    total = agg["total"]["cells"]
    assert (total["persons"], total["disabled"], total["subsidy"], total["visits"]) == (6, 5, 1700, 15)
    assert total["avg_area"] == round((90 + 100 + 110 + 120 + 130 + 140) / 6, 2)
    assert total["share"] == round(500 / 6, 2) and total["per_head"] == 340 and total["max_area"] == 140
    # Distinct counts are distinct over the union, not added up: every person is of ethnicity 01 (one per
    # village, one in all); disability types 2, 3 | 4 | 6, 7.
    assert [it["cells"]["ethnic"] for it in agg["items"]] == [1, 1, 1]
    assert (total["ethnic"], total["types"]) == (1, 5)
    csv = await client.get(
        f"{T}/{tid}/aggregate",
        params={"period": "2026-11", "states": "submitted", "format": "csv"},
        headers=world.dept,
    )
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert (
        lines[0].split(",")[:4] == ["镇街", "行名称", "人口数", "残疾人数"]
        and lines[-1].split(",")[1] == "合计"
    )


async def test_aggregate_by_code_value_pull_only_merges_live(client, world, people):
    spec = {
        "code": "by_sex",
        "name": "分性别残疾人",
        "kind": "aggregate",
        "ledger": "person",
        "rows": {"by": "code", "path": "sex"},
        "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
        "columns": [
            {"kind": "aggregate", "code": "n", "label": "人数", "fn": "count"},
            {
                "kind": "aggregate",
                "code": "avg_sub",
                "label": "平均补贴",
                "fn": "avg",
                "path": "disability.subsidy_amount",
            },
        ],
    }
    tpl = await ok(await client.post(T, json=spec, headers=world.dept), 201)
    sub = await ok(await client.post(f"{T}/{tpl['id']}/submit", headers=world.dept))
    assert sub["state"] == "approved"
    data = await ok(await client.get(f"{T}/{tpl['id']}/aggregate", headers=world.dept))
    rows = {it["key"]: it for it in data["items"]}
    assert set(rows) == {"0", "1", "2", "9"} and rows["1"]["label"] == "男"
    # Disabled persons 1, 3, 5 are male (subsidy 100, 300, 500); 2 and 6 female (200, 600).
    assert rows["1"]["cells"] == {"n": 3, "avg_sub": 300} and rows["2"]["cells"] == {"n": 2, "avg_sub": 400}
    assert data["total"]["cells"] == {"n": 5, "avg_sub": 340}


async def test_department_cannot_pull_what_it_cannot_read(client, world, regions):
    # Without grants 残联 sees sensitive fields masked only: grouping or summing them is refused.
    spec = {
        **AGG,
        "code": "no_grant",
        "columns": [
            {
                "kind": "aggregate",
                "code": "n",
                "label": "人数",
                "fn": "count",
                "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
            }
        ],
    }
    r = await client.post(T, json=spec, headers=world.dept)
    tid = (await ok(r, 201))["id"]
    an = await ok(await client.get(f"{T}/{tid}/analysis", headers=world.dept))
    assert an["ungranted"] == [
        {
            "path": "body.columns.0.filter.0.path",
            "code": "access.field_masked",
            "message": "脱敏字段仅在授权时可精确查找",
        }
    ]
    sub = await ok(await client.post(f"{T}/{tid}/submit", headers=world.dept))
    assert sub["state"] == "submitted"  # pull-only, but not auto-admitted while fields are ungranted
    problem(await client.post(f"{T}/{tid}/approve", headers=world.admin), 409, "report.ungranted_fields")
    refused = await ok(
        await client.post(f"{T}/{tid}/refuse", json={"reason": "请先申请残疾字段授权"}, headers=world.admin)
    )
    assert refused["state"] == "refused" and refused["versions"][0]["reason"] == "请先申请残疾字段授权"
    # Editing a refused template starts version 2 as a draft.
    v2 = await ok(await client.put(f"{T}/{tid}", json=spec, headers=world.dept))
    assert v2["latest_version"] == 2 and v2["state"] == "draft"


async def test_overlap_with_active_templates_is_reported(client, world, people):
    from tests.report.test_workflow import VISIT

    first = await ok(await client.post(T, json=VISIT, headers=world.dept), 201)
    await ok(await client.post(f"{T}/{first['id']}/submit", headers=world.dept))
    await ok(await client.post(f"{T}/{first['id']}/approve", headers=world.admin))
    second = {
        **VISIT,
        "code": "dis_visit_copy",
        "columns": [
            *VISIT["columns"][:3],
            {"kind": "gap", "code": "v", "label": "本月是否走访", "type": "boolean"},
            {"kind": "gap", "code": "phone", "label": "联系电话", "type": "text"},
        ],
    }
    tid = (await ok(await client.post(T, json=second, headers=world.dept), 201))["id"]
    an = await ok(await client.get(f"{T}/{tid}/analysis", headers=world.dept))
    assert an["overlap"][0]["code"] == "dis_visit" and an["overlap"][0]["gap_labels"] == ["本月是否走访"]
    assert "person.name" in an["overlap"][0]["fields"]
    assert an["gaps_in_catalogue"] == [{"column": "phone", "field": "person.phone"}]
