"""Department sources for push tests: 民政 (mzj), 残联 (cl) and 公安 (gaj) as service accounts, on
top
of the shared `world` (townships A and B, a 残联 user)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from app.catalog.validators import make_id_card
from tests.factories import api_key_headers, make_org_unit, make_service_account
from tests.world import VILLAGE_A, World


@dataclass
class Sources:
    mzj: dict
    cl: dict
    gaj: dict


@pytest.fixture
async def sources(session, world: World) -> Sources:
    out = {}
    for code, name in (("mzj", "区民政局"), ("cl2", "区残联业务系统"), ("gaj", "区公安局")):
        dept = "cl" if code == "cl2" else code
        unit = await make_org_unit(
            session,
            code=f"dept:{code}",
            name=name,
            kind="department",
            region_code="500118000000",
            department_code=dept,
        )
        _, key = await make_service_account(session, unit, name=f"{code}-system")
        out[dept] = api_key_headers(key)
    return Sources(**out)


def person_id(i: int) -> str:
    return make_id_card("500118", date(1950, 1, 1 + i % 28), i % 999 + 1, "1" if i % 2 else "2")


@pytest.fixture
async def person_x(client, world: World) -> dict:
    """Person X in township A, entered by the township."""
    r = await client.post(
        "/api/v1/ledgers/person/records",
        headers=world.a,
        json={
            "region_code": VILLAGE_A,
            "name": "王五",
            "id_number": person_id(7),
            "ethnicity": "01",
        },
    )
    assert r.status_code == 201, r.text
    return r.json()
