"""区民政局's quarterly report 低保家庭住房安全情况 per village, end to end through the API as the department.

A small world of eight households (户) in three villages, built through the records API as the
townships do. Every expected figure below is a hand count from that plan (see PLAN and EXPECTED),
chosen so the usual mistakes give other numbers:
- 低保 households are those with at least one 低保 member (not only those headed by one): household H2
  counts through its head's parent; a household is counted once however many 低保 members it has (H1: 3).
- persons are all members of those households, not only the 低保 ones (6 in 临江村, of whom 5 are 低保).
- the head is the member whose link says 户主 (relation_to_head 01, a link attribute): 户主为低保 is 2 there.
- H2 and H4 share one house (合租): its floor area counts once (205.50, not 290.50 per household, nor
  616.50 per person).
- a member whose link was removed (moved out of H3) no longer makes H3 a 低保 household.
- 低保边缘 (3) and 特困 (2) are not 低保 (1): H5 and H7 stay out.
The house-safety grade will come through admission; until then "needs repair" is house.is_dangerous.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest

from app.access.models import Grant
from app.catalog.validators import make_id_card
from app.demo.grants import DEMO_GRANTS
from app.demo.reports import LOW_INCOME_HOUSING
from tests.factories import auth_headers, make_org_unit, make_user
from tests.report.conftest import VILLAGE_A2, post
from tests.report.test_workflow import TASKS, T, ok
from tests.world import VILLAGE_A, VILLAGE_B, A, B

HOUSES = {  # key: (village, floor area, is_dangerous)
    "HA1": (VILLAGE_A, "120.50", True),
    "HA2": (VILLAGE_A, "85.00", False),
    "HA3": (VILLAGE_A, "200.00", True),
    "HA4": (VILLAGE_A, "150.00", True),
    "HA5": (VILLAGE_A2, "95.25", True),
    "HB1": (VILLAGE_B, "60.00", False),
    "HB2": (VILLAGE_B, "70.00", True),
}
# household: (village, house, members as (low_income_status, relation_to_head))
PLAN = {
    "H1": (VILLAGE_A, "HA1", [("1", "01"), ("1", "02"), ("1", "10")]),
    "H2": (VILLAGE_A, "HA2", [("0", "01"), ("1", "50")]),
    "H3": (VILLAGE_A, "HA3", [("0", "01")]),
    "H4": (VILLAGE_A, "HA2", [("1", "01")]),
    "H5": (VILLAGE_A, "HA4", [("3", "01"), ("3", "02")]),
    "H6": (VILLAGE_A2, "HA5", [("0", "01"), ("0", "02"), ("1", "10"), ("0", "20")]),
    "H7": (VILLAGE_B, "HB2", [("2", "01"), ("2", "02")]),
    "H8": (VILLAGE_B, "HB1", [("1", "01")]),
}
MOVED_OUT = ("H3", "1", "10")  # a 低保 member of H3 whose membership link is then removed
VISITED = {VILLAGE_A: 2, VILLAGE_A2: 1, VILLAGE_B: 1}  # 走访户数 typed by the townships
# Hand count. 临江村: H1 (3 persons, all 低保, HA1 dangerous), H2 (2, one 低保, HA2), H4 (1, 低保, HA2 again).
# 新华村: H6 (4 persons, one 低保, HA5 dangerous). 何埂村: H8 (1, 低保, HB1).
# head_low: households whose head (relation_to_head 01) is 低保: H1 and H4, not H2 (its 低保 member is the
# head's parent), not H6 (a child); H8.
EXPECTED = {
    VILLAGE_A: {"households": 3, "persons": 6, "head_low": 2, "area": 205.5, "repair": 1, "visited": 2},
    VILLAGE_A2: {"households": 1, "persons": 4, "head_low": 0, "area": 95.25, "repair": 1, "visited": 1},
    VILLAGE_B: {"households": 1, "persons": 1, "head_low": 1, "area": 60, "repair": 0, "visited": 1},
}
TOTAL = {"households": 5, "persons": 11, "head_low": 3, "area": 360.75, "repair": 2, "visited": 4}

REPORT = LOW_INCOME_HOUSING


@dataclass
class Households:
    ids: dict[str, int] = field(default_factory=dict)  # H1 … -> household id
    houses: dict[str, int] = field(default_factory=dict)
    members: dict[str, list[int]] = field(default_factory=dict)  # household key -> person ids, head first


@pytest.fixture
async def mzj(session, settings, world, regions) -> dict:
    """区民政局 with the demo district's default grants (app/demo/grants.py), nothing added for the test."""
    unit = await make_org_unit(
        session,
        code="dept:mzj",
        name="区民政局",
        kind="department",
        region_code="500118000000",
        department_code="mzj",
    )
    user = await make_user(session, username="mzj", org_unit=unit, roles=["dept_admin"])
    for g in DEMO_GRANTS:
        if g["grantee"] == ("org_unit", "dept:mzj"):
            session.add(
                Grant(
                    grantee_type="org_unit",
                    org_unit_id=unit.id,
                    ledger=g["ledger"],
                    field=g["field"],
                    level=g["level"],
                    row_scope=g.get("row_scope", "own"),
                    created_by="test",
                )
            )
    await session.flush()
    return auth_headers(settings, user)


@pytest.fixture
async def households(client, world, regions) -> Households:
    out = Households()
    township = {VILLAGE_A: world.a, VILLAGE_A2: world.a, VILLAGE_B: world.b}
    for key, (village, area, dangerous) in HOUSES.items():
        h = await post(
            client,
            "/api/v1/ledgers/house/records",
            township[village],
            {
                "region_code": village,
                "house_code": f"{village}{key}0001",
                "standard_address": f"永川区某镇某村{key}号",
                "floor_area": area,
                "is_dangerous": dangerous,
            },
        )
        out.houses[key] = h["id"]
    n = 0
    for k, (hkey, (village, house, members)) in enumerate(PLAN.items(), start=1):
        headers = township[village]
        hh = await post(
            client,
            "/api/v1/ledgers/household/records",
            headers,
            {"region_code": village, "household_no": f"{village}{k:04d}", "household_kind": "1"},
        )
        out.ids[hkey] = hh["id"]
        await post(
            client,
            "/api/v1/relations/household_house",
            headers,
            {"from_id": hh["id"], "to_id": out.houses[house]},
        )
        extra = [MOVED_OUT[1:]] if hkey == MOVED_OUT[0] else []
        for status, relation in members + extra:
            n += 1
            sex = "1" if relation in ("01", "10") else "2"
            p = await post(
                client,
                "/api/v1/ledgers/person/records",
                headers,
                {
                    "region_code": village,
                    "name": f"户{hkey}员{n}",
                    "sex": sex,
                    "id_number": make_id_card("500118", date(1940 + n, 1 + n % 12, 1 + n % 28), 300 + n, sex),
                    "low_income_status": status,
                },
            )
            link = await post(
                client,
                "/api/v1/relations/household_member",
                headers,
                {"from_id": p["id"], "to_id": hh["id"], "relation_to_head": relation},
            )
            out.members.setdefault(hkey, []).append(p["id"])
            if (status, relation) == MOVED_OUT[1:] and hkey == MOVED_OUT[0]:
                r = await client.delete(f"/api/v1/relations/household_member/{link['id']}", headers=headers)
                assert r.status_code == 204, r.text
                out.members[hkey].pop()
    return out


async def _run(client, world, mzj, spec: dict) -> tuple[dict, dict]:
    """Define, admit, dispatch for 2026-Q4, let each township type 走访户数 and submit; pull the aggregate."""
    tid = (await ok(await client.post(T, json=spec, headers=mzj), 201))["id"]
    an = await ok(await client.get(f"{T}/{tid}/analysis", headers=mzj))
    assert an["ungranted"] == []
    await ok(await client.post(f"{T}/{tid}/submit", headers=mzj))
    await ok(await client.post(f"{T}/{tid}/approve", headers=world.admin))
    d = await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-Q4"}, headers=mzj))
    tasks = {t["township_code"]: t["id"] for t in d["tasks"]}
    for township, headers in ((A, world.a), (B, world.b)):
        task = tasks[township + "000"]
        view = await ok(await client.get(f"{TASKS}/{task}", headers=headers))
        await ok(
            await client.put(
                f"{TASKS}/{task}/cells",
                headers=headers,
                json={
                    "cells": [
                        {"row": r["key"], "column": "visited", "value": VISITED[r["key"]]}
                        for r in view["items"]
                    ]
                },
            )
        )
        await ok(await client.post(f"{TASKS}/{task}/submit", headers=headers))
    agg = await ok(
        await client.get(
            f"{T}/{tid}/aggregate", params={"period": "2026-Q4", "states": "submitted"}, headers=mzj
        )
    )
    return {it["key"]: it["cells"] for it in agg["items"]}, agg["total"]["cells"]


async def test_households_are_kept_by_townships_and_read_by_the_department(client, world, mzj, households):
    """The model through REST: members with their relation to the head, the house, who reads what."""
    h1 = households.ids["H1"]
    members = await ok(
        await client.get(f"/api/v1/ledgers/household/records/{h1}/related/members", headers=mzj)
    )
    assert [i["id"] for i in members["items"]] == households.members["H1"]
    assert [i["link_relation_to_head"] for i in members["items"]] == ["01", "02", "10"]
    # 民政局 reads the 低保 status it owns in plain; ID numbers stay masked (500118********1234).
    assert [i["low_income_status"] for i in members["items"]] == ["1", "1", "1"]
    assert all(i["id_number"][6:14] == "********" for i in members["items"])
    house = await ok(await client.get(f"/api/v1/ledgers/household/records/{h1}/related/house", headers=mzj))
    assert [(i["id"], i["floor_area"], i["is_dangerous"]) for i in house["items"]] == [
        (households.houses["HA1"], 120.5, True)
    ]
    back = await ok(
        await client.get(
            f"/api/v1/ledgers/house/records/{households.houses['HA2']}/related/households", headers=mzj
        )
    )
    assert sorted(i["id"] for i in back["items"]) == sorted([households.ids["H2"], households.ids["H4"]])
    # The moved-out member is no longer one of H3's.
    h3 = await ok(
        await client.get(
            f"/api/v1/ledgers/household/records/{households.ids['H3']}/related/members", headers=mzj
        )
    )
    assert [i["id"] for i in h3["items"]] == households.members["H3"]
    # Township B neither sees township A's households nor their members; its own it does.
    r = await client.get(f"/api/v1/ledgers/household/records/{h1}/related/members", headers=world.b)
    assert r.status_code == 404
    own = await ok(
        await client.get(
            f"/api/v1/ledgers/household/records/{households.ids['H8']}/related/members", headers=world.b
        )
    )
    assert [i["link_relation_to_head"] for i in own["items"]] == ["01"]
    listed = await ok(await client.get("/api/v1/ledgers/household/records", headers=world.b))
    assert sorted(i["household_no"] for i in listed["items"]) == [VILLAGE_B + "0007", VILLAGE_B + "0008"]
    # One household per person: a second membership is refused, the first stays.
    other = await client.post(
        "/api/v1/relations/household_member",
        headers=world.a,
        json={
            "from_id": households.members["H1"][0],
            "to_id": households.ids["H2"],
            "relation_to_head": "99",
        },
    )
    assert other.status_code == 409, other.text


async def test_households_per_village_with_today_s_one_to_one_paths(client, world, mzj, households):
    """What the compiler could say before 1:N paths: households and their houses, per village, one to one."""
    spec = {
        **REPORT,
        "code": "households_by_village",
        "name": "各村户数及住房",
        "filter": [],
        "columns": [
            {"kind": "aggregate", "code": "households", "label": "户数", "fn": "count"},
            {
                "kind": "aggregate",
                "code": "repair",
                "label": "需维修房屋数",
                "fn": "count_distinct",
                "path": "house.id",
                "filter": [{"path": "house.is_dangerous", "op": "eq", "value": True}],
            },
            {
                "kind": "aggregate",
                "code": "max_area",
                "label": "最大住房面积",
                "fn": "max",
                "path": "house.floor_area",
            },
            {"kind": "gap", "code": "visited", "label": "走访户数", "type": "integer", "min": 0},
        ],
    }
    rows, total = await _run(client, world, mzj, spec)
    # 临江村 H1-H5 (dangerous houses HA1, HA3, HA4), 新华村 H6 (HA5), 何埂村 H7 (HB2 dangerous), H8.
    assert {k: (c["households"], c["repair"], c["max_area"], c["visited"]) for k, c in rows.items()} == {
        VILLAGE_A: (5, 3, 200, 2),
        VILLAGE_A2: (1, 1, 95.25, 1),
        VILLAGE_B: (2, 1, 70, 1),
    }
    assert (total["households"], total["visited"], total["max_area"]) == (8, 4, 200)


async def test_low_income_housing_report_matches_the_hand_count(client, world, mzj, households):
    rows, total = await _run(client, world, mzj, REPORT)
    assert rows == EXPECTED
    assert total == TOTAL


def test_hand_count_is_consistent_with_the_plan():
    """The expected figures restated from PLAN by the simplest loop, so a typo in EXPECTED shows here."""
    per: dict[str, dict] = {}
    for village, house, members in PLAN.values():
        if not any(s == "1" for s, _ in members):
            continue
        row = per.setdefault(village, {"households": 0, "persons": 0, "head_low": 0, "houses": set()})
        row["households"] += 1
        row["persons"] += len(members)
        row["head_low"] += ("1", "01") in members
        row["houses"].add(house)
    for village, row in per.items():
        houses = row.pop("houses")
        row["area"] = float(sum(Decimal(HOUSES[h][1]) for h in houses))
        row["repair"] = sum(HOUSES[h][2] for h in houses)
        exp = EXPECTED[village]
        assert {k: exp[k] for k in row} == row, village
    for k in EXPECTED[VILLAGE_A]:
        assert TOTAL[k] == sum(e[k] for e in EXPECTED.values()), k


# The same report as a department would finish it: 走访户数 required only where there are 低保 households,
# never more than them, and a three-deep chain of formulas (户均人数, 人均住房面积 -> 户均住房面积 ->
# 距 60 平方米标准) that the 合计 row must compute too.
RULED = {
    **REPORT,
    "code": "dibao_housing_ruled",
    "columns": [
        *[c for c in REPORT["columns"] if c["code"] != "visited"],
        {
            "kind": "gap",
            "code": "visited",
            "label": "走访户数",
            "type": "integer",
            "min": 0,
            "required_when": "households > 0",
        },
        {"kind": "formula", "code": "size", "label": "户均人数", "expr": "persons / households"},
        {"kind": "formula", "code": "area_pp", "label": "人均住房面积", "expr": "area / persons"},
        {"kind": "formula", "code": "area_ph", "label": "户均住房面积", "expr": "area_pp * size"},
        {"kind": "formula", "code": "short", "label": "户均面积距60平方米", "expr": "area_ph - 60"},
    ],
    "rules": [{"expr": "visited <= households", "message": "走访户数不能超过低保户数", "column": "visited"}],
}


def _chain(households: int, persons: int, area: str) -> dict:
    """The formulas by hand: each result rounded half away from zero to 2 places before the next uses it."""
    q = Decimal("0.01")
    size = (Decimal(persons) / households).quantize(q, "ROUND_HALF_UP")
    area_pp = (Decimal(area) / persons).quantize(q, "ROUND_HALF_UP")
    area_ph = (area_pp * size).quantize(q, "ROUND_HALF_UP")
    return {"size": size, "area_pp": area_pp, "area_ph": area_ph, "short": area_ph - 60}


async def test_ruled_report_checks_rows_and_totals_a_three_deep_formula_chain(client, world, mzj, households):
    tid = (await ok(await client.post(T, json=RULED, headers=mzj), 201))["id"]
    await ok(await client.post(f"{T}/{tid}/submit", headers=mzj))
    await ok(await client.post(f"{T}/{tid}/approve", headers=world.admin))
    d = await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-Q4"}, headers=mzj))
    tasks = {t["township_code"]: t["id"] for t in d["tasks"]}
    task_a, task_b = tasks[A + "000"], tasks[B + "000"]

    # More visits than 低保 households in 临江村 (3): refused, naming the row, the column and the rule.
    r = await client.put(
        f"{TASKS}/{task_a}/cells",
        headers=world.a,
        json={"cells": [{"row": VILLAGE_A, "column": "visited", "value": 4}]},
    )
    assert r.status_code == 422, r.text
    assert [e["code"] for e in r.json()["errors"]] == ["rule.failed"]
    assert "走访户数不能超过低保户数" in r.json()["errors"][0]["message"]
    # 新华村 has one 低保 household and no 走访户数 yet: submit is refused for that row only; villages of
    # township A without 低保 households need no number.
    await ok(
        await client.put(
            f"{TASKS}/{task_a}/cells",
            headers=world.a,
            json={"cells": [{"row": VILLAGE_A, "column": "visited", "value": VISITED[VILLAGE_A]}]},
        )
    )
    r = await client.post(f"{TASKS}/{task_a}/submit", headers=world.a)
    assert r.status_code == 422, r.text
    assert [(e["path"], e["code"]) for e in r.json()["errors"]] == [
        (f"rows.{VILLAGE_A2}.visited", "rule.required_when")
    ]
    await ok(
        await client.put(
            f"{TASKS}/{task_a}/cells",
            headers=world.a,
            json={"cells": [{"row": VILLAGE_A2, "column": "visited", "value": VISITED[VILLAGE_A2]}]},
        )
    )
    await ok(await client.post(f"{TASKS}/{task_a}/submit", headers=world.a))
    await ok(
        await client.put(
            f"{TASKS}/{task_b}/cells",
            headers=world.b,
            json={"cells": [{"row": VILLAGE_B, "column": "visited", "value": VISITED[VILLAGE_B]}]},
        )
    )
    await ok(await client.post(f"{TASKS}/{task_b}/submit", headers=world.b))

    agg = await ok(
        await client.get(
            f"{T}/{tid}/aggregate", params={"period": "2026-Q4", "states": "submitted"}, headers=mzj
        )
    )
    rows = {it["key"]: it["cells"] for it in agg["items"]}
    for village, want in EXPECTED.items():
        got = rows[village]
        assert {k: got[k] for k in want} == want
        chain = _chain(want["households"], want["persons"], str(want["area"]))
        assert {k: Decimal(str(got[k])) for k in chain} == chain, village
    total = agg["total"]["cells"]
    assert {k: total[k] for k in TOTAL} == TOTAL
    chain = _chain(TOTAL["households"], TOTAL["persons"], str(TOTAL["area"]))
    assert chain == {
        "size": Decimal("2.20"),
        "area_pp": Decimal("32.80"),
        "area_ph": Decimal("72.16"),
        "short": Decimal("12.16"),
    }
    assert {k: Decimal(str(total[k])) for k in chain} == chain
