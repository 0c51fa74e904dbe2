"""GraphQL fixtures: a small seeded district on top of the shared two-township `world`.

Rows are inserted straight into the ledger tables (the records API is tested elsewhere); one link
crosses townships on purpose (a person of A living in a house of B) to test row scope through joins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import event, insert

from app.access.models import Grant
from app.catalog.validators import make_id_card
from app.db.ledger_tables import tables
from tests.factories import api_key_headers, make_org_unit, make_service_account
from tests.world import VILLAGE_A, VILLAGE_B

GRAPHQL = "/graphql"


@dataclass
class Seed:
    ids: dict[str, int] = field(default_factory=dict)  # label -> record id
    rows: dict[str, dict] = field(default_factory=dict)  # label -> values as inserted


async def _row(session, seed: Seed, label: str, ledger: str, **values) -> int:
    t = tables().ledgers[ledger]
    rid = (await session.execute(insert(t).values(**values).returning(t.c.id))).scalar_one()
    seed.ids[label], seed.rows[label] = rid, values
    return rid


async def _link(session, relation: str, region: str, from_id: int, to_id: int, **attrs) -> None:
    await session.execute(
        insert(tables().relations[relation]).values(region_code=region, from_id=from_id, to_id=to_id, **attrs)
    )


def person_values(i: int, region: str, sex: str = "2") -> dict:
    birth = date(1950 + i * 4, 1 + i % 12, 3 + i)
    return {
        "region_code": region,
        "name": f"{'王李张刘陈杨'[i % 6]}{'秀英丽华芳敏'[i % 6]}{i}",
        "id_number": make_id_card("500118", birth, 100 + i * 2, sex),
        "sex": sex,
        "birth_date": birth,
        "ethnicity": "01",
        "phone": f"1390231{i:04d}",
        "marital_status": "20" if i % 2 else "10",
        "is_disabled": i == 0,
        "hukou_address": f"重庆市永川区临江镇临江村{i}组{i + 10}号",
    }


@pytest.fixture
async def seed(session, world) -> Seed:
    s = Seed()
    for i in range(6):
        await _row(session, s, f"pa{i}", "person", **person_values(i, VILLAGE_A, "2" if i % 2 == 0 else "1"))
    await _row(session, s, "pb0", "person", **person_values(7, VILLAGE_B))
    for label, region, n in (("ha0", VILLAGE_A, 1), ("ha1", VILLAGE_A, 2), ("hb0", VILLAGE_B, 3)):
        await _row(
            session,
            s,
            label,
            "house",
            region_code=region,
            house_code=f"{region}H{n:05d}",
            standard_address=f"重庆市永川区某镇某村{n}组{n}号",
            floor_area=Decimal("80.50") + n,
            built_year=1990 + n,
            use="10",
            owner_name=f"户主{n}",
            owner_id_number=make_id_card("500118", date(1960, 1, n), 200 + n * 2, "1"),
        )
    ids = s.ids
    await _link(session, "residence", VILLAGE_A, ids["pa0"], ids["ha0"], since=date(2011, 1, 1))
    await _link(session, "residence", VILLAGE_A, ids["pa1"], ids["ha0"], since=date(2012, 2, 2))
    await _link(session, "residence", VILLAGE_A, ids["pa2"], ids["hb0"], since=date(2013, 3, 3))  # crosses
    await _link(session, "residence", VILLAGE_B, ids["pb0"], ids["hb0"], since=date(2014, 4, 4))
    await _row(
        session,
        s,
        "da0",
        "disability",
        region_code=VILLAGE_A,
        parent_id=ids["pa0"],
        certificate_number=s.rows["pa0"]["id_number"] + "42",
        disability_type="4",
        disability_level="2",
        guardian_phone="13512345678",
        subsidy_amount=Decimal("120.00"),
    )
    await _row(
        session,
        s,
        "li1",
        "low_income",
        region_code=VILLAGE_A,
        parent_id=ids["pa1"],
        category="1",
        household_size=3,
        monthly_allowance=Decimal("650.00"),
    )
    await _row(
        session,
        s,
        "la0",
        "land",
        region_code=VILLAGE_A,
        parcel_code="500118101201JA00001",
        area_mu=Decimal("2.50"),
        land_type="0101",
    )
    await _link(session, "land_contract", VILLAGE_A, ids["pa0"], ids["la0"], share=Decimal("0.5"))
    await _row(
        session,
        s,
        "oa0",
        "organisation",
        region_code=VILLAGE_A,
        credit_code="91500118MA5U000000",
        name="临江种植专业合作社",
        org_type="3",
    )
    await _link(session, "membership", VILLAGE_A, ids["pa1"], ids["oa0"], role="4")
    await session.flush()
    return s


@dataclass
class Service:
    headers: dict
    account_id: int


@pytest.fixture
async def service(session) -> Service:
    """A service account of a department with no grant at all (yet)."""
    unit = await make_org_unit(
        session,
        code="dept:mzj",
        name="区民政局",
        kind="department",
        region_code="500118000000",
        department_code="mzj",
    )
    account, key = await make_service_account(session, unit, name="mzj-system")
    return Service(api_key_headers(key), account.id)


async def grant(
    session,
    *,
    service: Service | None = None,
    user_id: int | None = None,
    ledger: str,
    field: str,
    level: str,
    scope: str = "all",
    regions: list[str] | None = None,
    lookup: bool = False,
) -> None:
    session.add(
        Grant(
            grantee_type="service_account" if service else "user",
            service_account_id=service.account_id if service else None,
            user_id=user_id,
            ledger=ledger,
            field=field,
            level=level,
            allow_lookup=lookup,
            row_scope=scope,
            regions=regions or [],
            created_by="test",
        )
    )
    await session.flush()


async def gql(client: httpx.AsyncClient, headers: dict, query: str, variables: dict | None = None) -> dict:
    r = await client.post(GRAPHQL, json={"query": query, "variables": variables or {}}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def codes(body: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


@pytest.fixture
def statements(connection):
    """SQL statements run on the test connection while the block is active."""
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sync_engine = connection.sync_connection
    event.listen(sync_engine, "before_cursor_execute", before)
    yield seen
    event.remove(sync_engine, "before_cursor_execute", before)
