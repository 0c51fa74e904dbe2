"""Report fixtures: the shared two-township world plus regions, the 残联 department's grants and a few
disabled persons with houses, created through the records API like townships do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pytest
from sqlalchemy import select

from app.access.models import Grant
from app.catalog.validators import make_id_card
from app.org.models import OrgUnit, Region
from tests.world import VILLAGE_A, VILLAGE_B, A, B

VILLAGE_A2 = A + "202"


@dataclass
class People:
    persons: dict[str, list[int]] = field(default_factory=dict)  # township prefix -> person ids
    disability: dict[int, int] = field(default_factory=dict)  # person id -> disability record id
    houses: dict[int, int] = field(default_factory=dict)  # person id -> house id


async def post(client, url, headers, body, status=201) -> dict:
    r = await client.post(url, json=body, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture
async def regions(session):
    rows = [
        ("500118000000", "永川区", 3, None),
        (A + "000", "临江镇", 4, "500118000000"),
        (B + "000", "何埂镇", 4, "500118000000"),
        (VILLAGE_A, "临江村", 5, A + "000"),
        (VILLAGE_A2, "新华村", 5, A + "000"),
        (VILLAGE_B, "何埂村", 5, B + "000"),
    ]
    for code, name, level, parent in rows:
        session.add(Region(code=code, name=name, level=level, parent_code=parent))
    await session.flush()


@pytest.fixture
async def dept_grants(session, world):
    """残联 reads persons, houses and the disability ledger in plain (its business), district-wide."""
    unit = (await session.scalars(select(OrgUnit).where(OrgUnit.code == "dept:cl"))).one()
    for ledger in ("person", "disability", "house"):
        session.add(
            Grant(
                grantee_type="org_unit",
                org_unit_id=unit.id,
                ledger=ledger,
                field="*",
                level="read",
                row_scope="own",
                created_by="test",
            )
        )
    await session.flush()
    return unit


@pytest.fixture
async def people(client, world, regions, dept_grants) -> People:
    """Township A: 3 disabled persons (2 in village 201, 1 in 202) + 1 not disabled; township B: 2 disabled."""
    out = People()
    plan = [
        (world.a, VILLAGE_A, True),
        (world.a, VILLAGE_A, True),
        (world.a, VILLAGE_A2, True),
        (world.a, VILLAGE_A, False),
        (world.b, VILLAGE_B, True),
        (world.b, VILLAGE_B, True),
    ]
    for i, (headers, village, disabled) in enumerate(plan, start=1):
        sex = "1" if i % 2 else "2"
        number = make_id_card("500118", date(1950 + i * 5, 3, i), i * 7, sex)
        p = await post(
            client,
            "/api/v1/ledgers/person/records",
            headers,
            {
                "region_code": village,
                "name": f"李{'一二三四五六'[i - 1]}",
                "id_number": number,
                "ethnicity": "01",
                "is_disabled": disabled,
                "phone": f"1390000{i:04d}",
            },
        )
        out.persons.setdefault(village[:9], []).append(p["id"])
        h = await post(
            client,
            "/api/v1/ledgers/house/records",
            headers,
            {
                "region_code": village,
                "house_code": f"{village}H{i:03d}",
                "standard_address": f"永川区某镇某村{i}号",
                "floor_area": 80 + i * 10,
            },
        )
        await post(client, "/api/v1/relations/residence", headers, {"from_id": p["id"], "to_id": h["id"]})
        out.houses[p["id"]] = h["id"]
        if disabled:
            d = await post(
                client,
                "/api/v1/ledgers/disability/records",
                headers,
                {
                    "parent_id": p["id"],
                    "certificate_number": number + f"{(i % 7) + 1}{(i % 4) + 1}",
                    "disability_type": str((i % 7) + 1),
                    "disability_level": str((i % 4) + 1),
                    "subsidy_amount": 100 * i,
                    "living_subsidy": i % 2 == 0,
                },
            )
            out.disability[p["id"]] = d["id"]
    return out
