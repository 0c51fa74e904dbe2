"""Relations: cardinality held by the database, link changes in history and audit."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from app.access.audit_models import AuditEntry
from app.access.models import Grant
from app.db.ledger_tables import tables
from tests.factories import api_key_headers, make_org_unit, make_service_account
from tests.ledger.conftest import VILLAGE_A
from tests.ledger.test_records import PERSONS, assert_problem, create, person

HOUSES = "/api/v1/ledgers/house/records"
RESIDENCE = "/api/v1/relations/residence"


async def house(client, headers, i: int) -> dict:
    r = await client.post(
        HOUSES,
        headers=headers,
        json={
            "region_code": VILLAGE_A,
            "house_code": f"{VILLAGE_A}{i:06d}",
            "standard_address": f"重庆市永川区临江镇某村3组{i}号",
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_item9_one_to_one_relation_refuses_a_second_link(client, world, session):
    p = await create(client, world.a, person(70))
    h1, h2 = await house(client, world.a, 701), await house(client, world.a, 702)
    first = await client.post(RESIDENCE, json={"from_id": p["id"], "to_id": h1["id"]}, headers=world.a)
    assert first.status_code == 201, first.text
    r = await client.post(RESIDENCE, json={"from_id": p["id"], "to_id": h2["id"]}, headers=world.a)
    body = assert_problem(r, 409, "relation.cardinality")
    assert body["errors"] == [
        {
            "path": "body.from_id",
            "code": "relation.cardinality",
            "message": "该记录已有“居住”关联，须先解除原关联",
        }
    ]
    assert "居住" in body["title"]
    res = (await client.get(f"{PERSONS}/{p['id']}/related/residence", headers=world.a)).json()
    assert [i["id"] for i in res["items"]] == [h1["id"]]
    # The same pair twice is still its own, plainer answer.
    again = await client.post(RESIDENCE, json={"from_id": p["id"], "to_id": h1["id"]}, headers=world.a)
    assert_problem(again, 409, "relation.duplicate")
    # The "many" side stays many: a second person may live in the same house.
    q = await create(client, world.a, person(74))
    r = await client.post(RESIDENCE, json={"from_id": q["id"], "to_id": h1["id"]}, headers=world.a)
    assert r.status_code == 201, r.text
    # The database holds the rule, whoever writes: a second live row is refused by the index …
    link = tables().relations["residence"]
    with pytest.raises(IntegrityError, match="uq_rel_residence_from"):
        async with session.begin_nested():
            await session.execute(insert(link).values(region_code=VILLAGE_A, from_id=p["id"], to_id=h2["id"]))
    # … and a removed link (soft-deleted) no longer counts: moving house works.
    assert (await client.delete(f"{RESIDENCE}/{first.json()['id']}", headers=world.a)).status_code == 204
    r = await client.post(RESIDENCE, json={"from_id": p["id"], "to_id": h2["id"]}, headers=world.a)
    assert r.status_code == 201, r.text
    res = (await client.get(f"{PERSONS}/{p['id']}/related/residence", headers=world.a)).json()
    assert [i["id"] for i in res["items"]] == [h2["id"]]


async def test_item9_one_to_one_extension_refuses_a_second_row(client, world):
    p = await create(client, world.a, person(72))
    body = {
        "parent_id": p["id"],
        "certificate_number": p["id_number"] + "42",
        "disability_type": "4",
        "disability_level": "2",
    }
    first = await client.post("/api/v1/ledgers/disability/records", json=body, headers=world.a)
    assert first.status_code == 201, first.text
    r = await client.post(
        "/api/v1/ledgers/disability/records",
        headers=world.a,
        json={**body, "certificate_number": p["id_number"] + "31"},
    )
    problem = assert_problem(r, 409, "record.duplicate")
    assert problem["errors"][0]["path"] == "body.parent_id"


async def _person_reader(session, *, houses: bool) -> dict:
    """A system that reads persons district-wide, and houses only when asked."""
    unit = await make_org_unit(
        session,
        code=f"dept:gaj{int(houses)}",
        name="区公安分局",
        kind="department",
        region_code="500118000000",
        department_code="gaj",
    )
    account, key = await make_service_account(session, unit, name=f"gaj-system-{int(houses)}")
    for ledger in ("person", "house") if houses else ("person",):
        session.add(
            Grant(
                grantee_type="service_account",
                service_account_id=account.id,
                ledger=ledger,
                field="*",
                level="read",
                row_scope="all",
                created_by="test",
            )
        )
    await session.flush()
    return api_key_headers(key)


async def test_item9_link_changes_appear_in_history_and_audit(client, world, session):
    p = await create(client, world.a, person(73))
    h = await house(client, world.a, 703)
    made = await client.post(
        RESIDENCE, json={"from_id": p["id"], "to_id": h["id"], "since": "2021-06-01"}, headers=world.a
    )
    assert made.status_code == 201, made.text
    link_id = made.json()["id"]
    assert (await client.delete(f"{RESIDENCE}/{link_id}", headers=world.a)).status_code == 204

    hist = (await client.get(f"{PERSONS}/{p['id']}/history", headers=world.a)).json()["items"]
    links = [(x["op"], x["field"], x["before"], x["after"]) for x in hist if x["op"] in ("link", "unlink")]
    assert links == [("unlink", "residence", str(h["id"]), None), ("link", "residence", None, str(h["id"]))]
    assert all(x["actor"].endswith(":ta") for x in hist)
    back = (await client.get(f"{HOUSES}/{h['id']}/history", headers=world.a)).json()["items"]
    links = [(x["op"], x["field"], x["before"], x["after"]) for x in back if x["op"] in ("link", "unlink")]
    assert links == [("unlink", "residents", str(p["id"]), None), ("link", "residents", None, str(p["id"]))]

    audit = (
        await session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(["link", "unlink"])).order_by(AuditEntry.id)
        )
    ).all()
    assert [
        (e.action, e.ledger, e.record_ids, e.detail["relation"], e.detail["link_id"], e.detail["to_id"])
        for e in audit
    ] == [
        ("link", "person", [p["id"]], "residence", link_id, h["id"]),
        ("unlink", "person", [p["id"]], "residence", link_id, h["id"]),
    ]

    # A link shows in history only to who may see its other end, like related records do.
    blind = await _person_reader(session, houses=False)
    hist = (await client.get(f"{PERSONS}/{p['id']}/history", headers=blind)).json()["items"]
    assert hist and {x["op"] for x in hist} == {"create"}
    sees = await _person_reader(session, houses=True)
    hist = (await client.get(f"{PERSONS}/{p['id']}/history", headers=sees)).json()["items"]
    assert [x["op"] for x in hist if x["field"] == "residence"] == ["unlink", "link"]
