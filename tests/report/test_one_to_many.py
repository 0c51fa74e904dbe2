"""One-to-many paths in templates: exists / not_exists / count filters, link attributes (pull, filter, group),
aggregates that count a shared house once, distinct counts over the union, and access through all of them.

A small hand-counted world, inserted straight into the ledger tables (the records API is tested elsewhere):

    house  village   area  residents (relation to head)                 low income
    H1     A 201     100   P1 01, P2 02, P3 10, P4 20, P5 50             P1
    H2     A 201      60   P6 01, P7 02                                  -
    H3     A 202      80   P8 01                                         P8
    H4     A 202      50   (nobody)                                      -
    HB     B 201      70   Q1 01, Q2 10                                  Q1

The residents of each inhabited house form one household (户) living there; the relation to the head is
an attribute of household membership (person.household / household.members), not of the residence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from app.access.models import Grant
from app.catalog.model import Field, FieldType, Relation, Sensitivity
from app.catalog.validators import make_id_card
from app.db.ledger_tables import tables
from app.org.models import OrgUnit
from tests.report.conftest import VILLAGE_A2
from tests.report.test_workflow import T, ok
from tests.world import VILLAGE_A, VILLAGE_B

HOUSES = {
    "H1": (VILLAGE_A, 100),
    "H2": (VILLAGE_A, 60),
    "H3": (VILLAGE_A2, 80),
    "H4": (VILLAGE_A2, 50),
    "HB": (VILLAGE_B, 70),
}
RESIDENTS = {
    "P1": ("H1", "01", True),
    "P2": ("H1", "02", False),
    "P3": ("H1", "10", False),
    "P4": ("H1", "20", False),
    "P5": ("H1", "50", False),
    "P6": ("H2", "01", False),
    "P7": ("H2", "02", False),
    "P8": ("H3", "01", True),
    "Q1": ("HB", "01", True),
    "Q2": ("HB", "10", False),
}


@dataclass
class Small:
    ids: dict[str, int] = field(default_factory=dict)
    households: dict[str, int] = field(default_factory=dict)  # house code -> the household living there

    def names(self, items: list[dict]) -> list[str]:
        """The labels of listed records (ids repeat across ledgers: houses start with H, persons not)."""
        house = "house_code" in items[0]["cells"]
        back = {v: k for k, v in self.ids.items() if k.startswith("H") == house}
        return sorted(back[it["record_id"]] for it in items)


@pytest.fixture
async def small(session, world, regions, dept_grants) -> Small:
    """The world above; 残联 also reads the low-income extension, except its allowance (masked)."""
    unit = (await session.scalars(select(OrgUnit).where(OrgUnit.code == "dept:cl"))).one()
    session.add(
        Grant(
            grantee_type="org_unit",
            org_unit_id=unit.id,
            ledger="low_income",
            field="*",
            level="read",
            row_scope="own",
            created_by="test",
        )
    )
    session.add(
        Grant(
            grantee_type="org_unit",
            org_unit_id=unit.id,
            ledger="low_income",
            field="monthly_allowance",
            level="masked",
            row_scope="own",
            created_by="test",
        )
    )
    s = Small()
    t = tables()
    for code, (village, area) in HOUSES.items():
        s.ids[code] = (
            await session.execute(
                insert(t.ledgers["house"])
                .values(
                    region_code=village,
                    house_code=f"{village}{code}",
                    standard_address=f"永川区某村{code}号",
                    floor_area=Decimal(area),
                )
                .returning(t.ledgers["house"].c.id)
            )
        ).scalar_one()
    for i, (code, (house, rel, poor)) in enumerate(RESIDENTS.items()):
        village = HOUSES[house][0]
        s.ids[code] = (
            await session.execute(
                insert(t.ledgers["person"])
                .values(
                    region_code=village,
                    name=f"张{code}",
                    id_number=make_id_card("500118", date(1960 + i, 1, 1 + i), i, "1"),
                    sex="1",
                    ethnicity="01",
                )
                .returning(t.ledgers["person"].c.id)
            )
        ).scalar_one()
        await session.execute(
            insert(t.relations["residence"]).values(
                region_code=village, from_id=s.ids[code], to_id=s.ids[house], since=date(2000 + i, 1, 1)
            )
        )
        if house not in s.households:
            s.households[house] = (
                await session.execute(
                    insert(t.ledgers["household"])
                    .values(
                        region_code=village,
                        household_no=f"{village}{len(s.households) + 1:04d}",
                        household_kind="1",
                    )
                    .returning(t.ledgers["household"].c.id)
                )
            ).scalar_one()
            await session.execute(
                insert(t.relations["household_house"]).values(
                    region_code=village, from_id=s.households[house], to_id=s.ids[house]
                )
            )
        await session.execute(
            insert(t.relations["household_member"]).values(
                region_code=village, from_id=s.ids[code], to_id=s.households[house], relation_to_head=rel
            )
        )
        if poor:
            await session.execute(
                insert(t.ledgers["low_income"]).values(
                    region_code=village,
                    parent_id=s.ids[code],
                    category="1",
                    household_size=2,
                    monthly_allowance=Decimal(500),
                )
            )
    await session.flush()
    return s


async def live(client, world, spec: dict) -> dict:
    """Define a pull-only template (auto-admitted) and read it live as its department."""
    tpl = await ok(await client.post(T, json=spec, headers=world.dept), 201)
    sub = await ok(await client.post(f"{T}/{tpl['id']}/submit", headers=world.dept))
    assert sub["state"] == "approved", sub
    return await ok(await client.get(f"{T}/{tpl['id']}/aggregate", headers=world.dept))


def houses(filter_: list[dict], code: str = "h") -> dict:
    return {
        "code": code,
        "name": "房屋清单",
        "kind": "list",
        "ledger": "house",
        "filter": filter_,
        "columns": [{"kind": "field", "code": "house_code", "path": "house_code"}],
    }


LOW_INCOME_RESIDENT = {"path": "residents", "op": "exists", "where": [{"path": "low_income", "op": "exists"}]}


async def test_exists_and_not_exists_over_residents(client, world, small):
    got = await live(client, world, houses([LOW_INCOME_RESIDENT]))
    assert small.names(got["items"]) == ["H1", "H3", "HB"]
    got = await live(client, world, houses([{**LOW_INCOME_RESIDENT, "op": "not_exists"}], "h2"))
    assert small.names(got["items"]) == ["H2", "H4"]
    # A link attribute of the link that reached the member: houses whose household head is on low income.
    head_poor = {
        "path": "households.members",
        "op": "exists",
        "where": [
            {"path": "@relation_to_head", "op": "eq", "value": "01"},
            {"path": "low_income", "op": "exists"},
        ],
    }
    child = {
        "path": "households.members",
        "op": "exists",
        "where": [{"path": "@relation_to_head", "op": "eq", "value": "10"}],
    }
    assert small.names((await live(client, world, houses([head_poor], "h3")))["items"]) == ["H1", "H3", "HB"]
    assert small.names((await live(client, world, houses([child, head_poor], "h4")))["items"]) == ["H1", "HB"]


async def test_count_of_residents_compared_to_a_value(client, world, small):
    two = {"path": "residents", "op": "count", "compare": "gte", "value": 2}
    assert small.names((await live(client, world, houses([two])))["items"]) == ["H1", "H2", "HB"]
    none = {"path": "residents", "op": "count", "compare": "eq", "value": 0}
    assert small.names((await live(client, world, houses([none], "h2")))["items"]) == ["H4"]
    # Two hops (person → house → its residents): persons who live with at least 4 others.
    crowded = {
        "code": "p",
        "name": "同住",
        "kind": "list",
        "ledger": "person",
        "filter": [{"path": "residence.residents", "op": "count", "compare": "gt", "value": 4}],
        "columns": [{"kind": "field", "code": "name", "path": "name"}],
    }
    assert small.names((await live(client, world, crowded))["items"]) == ["P1", "P2", "P3", "P4", "P5"]


async def test_link_attribute_pull_filter_and_group(client, world, small):
    spec = {
        "code": "heads",
        "name": "户主",
        "kind": "list",
        "ledger": "person",
        "filter": [{"path": "household.@relation_to_head", "op": "eq", "value": "01"}],
        "columns": [
            {"kind": "field", "code": "name", "path": "name"},
            {"kind": "field", "code": "rel", "path": "household.@relation_to_head"},
        ],
    }
    got = await live(client, world, spec)
    assert small.names(got["items"]) == ["P1", "P6", "P8", "Q1"]
    assert {it["cells"]["rel"] for it in got["items"]} == {"01"}
    col = next(c for c in got["columns"] if c["code"] == "rel")
    assert (col["label"], col["type"], col.get("codelist")) == ("与户主关系", "code", "relation_to_head")
    by_rel = {
        "code": "by_rel",
        "name": "按与户主关系",
        "kind": "aggregate",
        "ledger": "person",
        "rows": {"by": "code", "path": "household.@relation_to_head"},
        "columns": [{"kind": "aggregate", "code": "n", "label": "人数", "fn": "count"}],
    }
    got = await live(client, world, by_rel)
    counts = {it["key"]: it["cells"]["n"] for it in got["items"] if it["cells"]["n"]}
    assert counts == {"01": 4, "02": 2, "10": 2, "20": 1, "50": 1} and got["total"]["cells"]["n"] == 10


async def test_a_shared_house_counts_once_per_row(client, world, small):
    spec = {
        "code": "area",
        "name": "住房面积",
        "kind": "aggregate",
        "ledger": "person",
        "rows": {"by": "village"},
        "columns": [
            {"kind": "aggregate", "code": "persons", "label": "人数", "fn": "count"},
            {"kind": "aggregate", "code": "houses", "label": "房屋数", "fn": "count", "path": "residence.id"},
            {
                "kind": "aggregate",
                "code": "area",
                "label": "住房面积",
                "fn": "sum",
                "path": "residence.floor_area",
            },
            {
                "kind": "aggregate",
                "code": "avg",
                "label": "平均面积",
                "fn": "avg",
                "path": "residence.floor_area",
            },
            {
                "kind": "aggregate",
                "code": "poor_area",
                "label": "低收入人口住房面积",
                "fn": "sum",
                "path": "residence.floor_area",
                "filter": [{"path": "low_income", "op": "exists"}],
            },
            {"kind": "formula", "code": "per_person", "label": "人均面积", "expr": "area / persons"},
        ],
    }
    got = await live(client, world, spec)
    cells = {it["key"]: it["cells"] for it in got["items"]}
    # Village A 201: H1 (100, 5 persons) + H2 (60, 2 persons) = 160, not 5 × 100 + 2 × 60 = 620.
    assert cells[VILLAGE_A] == {
        "persons": 7,
        "houses": 2,
        "area": 160,
        "avg": 80,
        "poor_area": 100,
        "per_person": 22.86,
    }
    assert (cells[VILLAGE_A2]["area"], cells[VILLAGE_A2]["houses"], cells[VILLAGE_B]["area"]) == (80, 1, 70)
    total = got["total"]["cells"]
    assert (total["persons"], total["houses"], total["area"], total["avg"], total["poor_area"]) == (
        10,
        4,
        310,
        77.5,
        250,
    )
    # From the house side: residents counted through the one-to-many hop, each house once.
    per_house = {
        "code": "hv",
        "name": "各村房屋",
        "kind": "aggregate",
        "ledger": "house",
        "rows": {"by": "village"},
        "columns": [
            {"kind": "aggregate", "code": "houses", "label": "房屋数", "fn": "count"},
            {
                "kind": "aggregate",
                "code": "residents",
                "label": "居住人数",
                "fn": "count",
                "path": "residents.id",
            },
            {
                "kind": "aggregate",
                "code": "poor",
                "label": "低收入户房屋数",
                "fn": "count",
                "filter": [LOW_INCOME_RESIDENT],
            },
            {
                "kind": "aggregate",
                "code": "poor_area",
                "label": "低收入户住房面积",
                "fn": "sum",
                "path": "floor_area",
                "filter": [LOW_INCOME_RESIDENT],
            },
            {
                "kind": "aggregate",
                "code": "rels",
                "label": "关系种类",
                "fn": "count_distinct",
                "path": "households.members.@relation_to_head",
            },
        ],
    }
    got = await live(client, world, per_house)
    cells = {it["key"]: it["cells"] for it in got["items"]}
    assert cells[VILLAGE_A] == {"houses": 2, "residents": 7, "poor": 1, "poor_area": 100, "rels": 5}
    assert cells[VILLAGE_A2] == {"houses": 2, "residents": 1, "poor": 1, "poor_area": 80, "rels": 1}
    assert cells[VILLAGE_B] == {"houses": 1, "residents": 2, "poor": 1, "poor_area": 70, "rels": 2}
    # Distinct over the union (01 02 10 20 50), not 5 + 1 + 2.
    assert got["total"]["cells"] == {"houses": 5, "residents": 10, "poor": 3, "poor_area": 250, "rels": 5}


async def test_counted_once_columns_read_the_template_s_filtered_rows(client, world, small):
    """With a template filter, a column counted once over a shared hop starts from the template's rows
    computed in a subquery of their own (aggregate_stmt._rows); the figures are those of the same filter
    put on each column (the other shape, which repeats it next to the hops) and of the hand count:
    the 低收入 persons P1 (H1, 100), P8 (H3, 80) and Q1 (HB, 70), one house each."""
    once = [
        {
            "kind": "aggregate",
            "code": "houses",
            "label": "房屋数",
            "fn": "count_distinct",
            "path": "residence.id",
        },
        {
            "kind": "aggregate",
            "code": "area",
            "label": "住房面积",
            "fn": "sum",
            "path": "residence.floor_area",
        },
        {
            "kind": "aggregate",
            "code": "avg",
            "label": "平均面积",
            "fn": "avg",
            "path": "residence.floor_area",
        },
    ]
    poor = [{"path": "low_income", "op": "exists"}]
    by_template = {
        "code": "once_t",
        "name": "低收入人口住房",
        "kind": "aggregate",
        "ledger": "person",
        "rows": {"by": "village"},
        "filter": poor,
        "columns": [{"kind": "aggregate", "code": "persons", "label": "人数", "fn": "count"}, *once],
    }
    by_column = {
        **by_template,
        "code": "once_c",
        "filter": [],
        "columns": [
            {"kind": "aggregate", "code": "persons", "label": "人数", "fn": "count", "filter": poor},
            *({**c, "filter": poor} for c in once),
        ],
    }
    want = {
        VILLAGE_A: {"persons": 1, "houses": 1, "area": 100, "avg": 100},
        VILLAGE_A2: {"persons": 1, "houses": 1, "area": 80, "avg": 80},
        VILLAGE_B: {"persons": 1, "houses": 1, "area": 70, "avg": 70},
    }
    for spec in (by_template, by_column):
        got = await live(client, world, spec)
        cells = {it["key"]: it["cells"] for it in got["items"]}
        assert {k: cells[k] for k in want} == want, spec["code"]
        total = got["total"]["cells"]
        assert (total["persons"], total["houses"], total["area"], float(total["avg"])) == (
            3,
            3,
            250,
            83.33,
        ), total


def _errors(r, status: int = 422) -> dict[str, str]:
    assert r.status_code == status, r.text
    return {e["path"]: e["code"] for e in r.json()["errors"]}


async def test_semantic_errors_name_their_path(client, world, small):
    bad = houses(
        [
            {"path": "residents.name", "op": "eq", "value": "x"},
            {"path": "@relation_to_head", "op": "eq", "value": "01"},
            {"path": "residents", "op": "exists", "value": 1},
            {"path": "residents", "op": "count", "value": 2},
            {"path": "residents", "op": "exists", "where": [{"path": "nope", "op": "eq", "value": 1}]},
            {"path": "floor_area", "op": "gt", "value": 1, "where": [{"path": "id", "op": "eq", "value": 1}]},
            {"path": "residents", "op": "count", "compare": "gt", "value": -1},
        ]
    )
    bad["columns"].append({"kind": "field", "code": "who", "path": "residents.name"})
    r = await client.post(T, json=bad, headers=world.dept)
    assert _errors(r) == {
        "body.filter.0.path": "template.path_to_many",
        "body.filter.1.path": "template.link_attribute",
        "body.filter.2.value": "template.value",
        "body.filter.3.compare": "template.compare",
        "body.filter.4.where.0.path": "template.field_unknown",
        "body.filter.5.where": "template.condition_shape",
        "body.filter.6.value": "template.value",
        "body.columns.1.path": "template.path_to_many",
    }
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]) for e in r.json()["errors"])


async def test_masked_fields_cannot_be_used_through_one_to_many_paths(client, world, small):
    """Two-sided: the masked allowance can't be filtered, compared or summed through residents (which
    would rebuild it), while the readable household size can, with the right answers."""

    def tpl(code: str, field_: str, op: str, value) -> dict:
        return {
            "code": code,
            "name": "低收入住房",
            "kind": "aggregate",
            "ledger": "house",
            "rows": {"by": "village"},
            "columns": [
                {
                    "kind": "aggregate",
                    "code": "n",
                    "label": "房屋数",
                    "fn": "count",
                    "filter": [
                        {
                            "path": "residents",
                            "op": "exists",
                            "where": [{"path": f"low_income.{field_}", "op": op, "value": value}],
                        }
                    ],
                },
                {
                    "kind": "aggregate",
                    "code": "s",
                    "label": "合计",
                    "fn": "sum",
                    "path": f"residents.low_income.{field_}",
                },
            ],
        }

    masked = await ok(
        await client.post(T, json=tpl("m", "monthly_allowance", "gt", 400), headers=world.dept), 201
    )
    an = await ok(await client.get(f"{T}/{masked['id']}/analysis", headers=world.dept))
    assert {(e["path"], e["code"]) for e in an["ungranted"]} == {
        ("body.columns.0.filter.0.where.0.path", "access.field_masked"),
        ("body.columns.1.path", "access.field_masked"),
    }
    sub = await ok(await client.post(f"{T}/{masked['id']}/submit", headers=world.dept))
    assert sub["state"] == "submitted"  # not auto-admitted while it asks for what the department can't see
    readable = await live(client, world, tpl("r", "household_size", "gte", 2))
    cells = {it["key"]: it["cells"] for it in readable["items"]}
    assert cells[VILLAGE_A] == {"n": 1, "s": 2} and readable["total"]["cells"] == {"n": 3, "s": 6}


def test_link_attributes_follow_the_rest_rule():
    """Link attributes carry no grants: one a user reads by default is readable, a sensitive one is hidden
    (refused for pulling, filtering and grouping alike), as REST and GraphQL show them."""
    from app.access.levels import Level
    from app.access.policy import LinkPolicy
    from app.errors import Problem

    rel = Relation(
        "r",
        "关系",
        "person",
        "house",
        "f",
        "b",
        attributes=(
            Field("open", "公开", FieldType.text, sensitivity=Sensitivity.internal),
            Field("secret", "敏感", FieldType.text, sensitivity=Sensitivity.sensitive),
        ),
    )
    pol = LinkPolicy(rel)
    assert pol.level("open") == Level.read and pol.level("secret") == Level.hidden
    pol.check_filter("open", "eq", "x")
    pol.check_sort("open", "x")
    for fn in (
        lambda: pol.check_filter("secret", "eq", "x"),
        lambda: pol.check_sort("secret", "x"),
        lambda: pol.column("secret", tables().relations["residence"]),
    ):
        with pytest.raises(Problem) as exc:
            fn()
        assert exc.value.status == 403 and exc.value.code == "access.field_hidden"


async def test_reader_must_be_able_to_use_nested_conditions(client, world, small):
    """Two-sided: the template's rows are decided by a nested condition on the low-income category. The
    department (granted it) reads the report; the platform admin, for whom the category is masked, is
    refused rather than shown which houses hold a low-income resident."""
    spec = houses(
        [
            {
                "path": "residents",
                "op": "exists",
                "where": [{"path": "low_income.category", "op": "eq", "value": "1"}],
            }
        ],
        "nested",
    )
    got = await live(client, world, spec)
    assert small.names(got["items"]) == ["H1", "H3", "HB"]
    tid = (await ok(await client.get(T, headers=world.dept)))["items"][0]["id"]
    r = await client.get(f"{T}/{tid}/aggregate", headers=world.admin)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "report.reader_restricted"
    assert r.json()["errors"][0]["path"] == "spec.filter.0.path"
