"""Moving a record between areas (PATCH region_code): who may, and what moves with it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.access.audit_models import AuditEntry
from app.access.models import Grant
from app.db.ledger_tables import tables
from tests.factories import api_key_headers, make_org_unit, make_service_account
from tests.ledger.conftest import VILLAGE_A, VILLAGE_B, A, B
from tests.ledger.test_records import PERSONS, assert_problem, create, person

HOUSES = "/api/v1/ledgers/house/records"
DISABILITY = "/api/v1/ledgers/disability/records"


async def _region_of(session, ledger: str, record_id: int) -> str:
    t = tables().ledgers[ledger]
    return (await session.execute(select(t.c.region_code).where(t.c.id == record_id))).scalar_one()


async def _read_only_caller(kind: str, client, world, session, settings) -> dict:
    """A caller that can see every person of the district but may write none of their fields."""
    if kind == "department_default":  # no grant: users read public/internal, sensitive masked
        return world.dept
    if kind == "department_read":
        session.add(
            Grant(
                grantee_type="org_unit",
                org_unit_id=world.users["cl"].org_unit_id,
                ledger="person",
                field="*",
                level="read",
                row_scope="all",
                created_by="test",
            )
        )
        await session.flush()
        return world.dept
    unit = await make_org_unit(
        session,
        code="dept:mzj",
        name="区民政局",
        kind="department",
        region_code="500118000000",
        department_code="mzj",
    )
    account, key = await make_service_account(session, unit, name="mzj-system")
    session.add(
        Grant(
            grantee_type="service_account",
            service_account_id=account.id,
            ledger="person",
            field="*",
            level="masked",
            row_scope="all",
            created_by="test",
        )
    )
    await session.flush()
    return api_key_headers(key)


@pytest.mark.parametrize("kind", ["department_default", "department_read", "service_account_masked"])
async def test_item2_read_only_caller_cannot_move_record(client, world, session, settings, kind):
    rec = await create(client, world.a, person(60))
    url = f"{PERSONS}/{rec['id']}"
    caller = await _read_only_caller(kind, client, world, session, settings)
    # The caller does see the record (so this is about writing, not about finding it) …
    seen = await client.get(url, headers=caller)
    assert seen.status_code == 200, seen.text
    assert seen.json()["region_code"] == VILLAGE_A
    # … but may not move it, out of its township or inside it.
    for target in (VILLAGE_B, A + "202"):
        r = await client.patch(url, json={"region_code": target}, headers={**caller, "If-Match": 'W/"1"'})
        body = assert_problem(r, 403, "access.record_readonly")
        assert body["errors"][0]["path"] == "body.region_code"
    assert await _region_of(session, "person", rec["id"]) == VILLAGE_A
    still = (await client.get(url, headers=world.a)).json()
    assert still["region_code"] == VILLAGE_A and still["version"] == 1
    hist = (await client.get(url + "/history", headers=world.a)).json()["items"]
    assert {h["op"] for h in hist} == {"create"}


async def test_item2_township_admin_moves_within_its_scope_only(client, world, session):
    rec = await create(client, world.a, person(61))
    url = f"{PERSONS}/{rec['id']}"
    r = await client.patch(url, json={"region_code": A + "202"}, headers={**world.a, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["region_code"] == A + "202" and r.json()["version"] == 2
    # Into an area it cannot write: refused, nothing changes.
    r = await client.patch(url, json={"region_code": VILLAGE_B}, headers={**world.a, "If-Match": 'W/"2"'})
    assert_problem(r, 403, "access.region_out_of_scope")
    # A department writing person fields in township A only cannot move a record into B either.
    session.add(
        Grant(
            grantee_type="org_unit",
            org_unit_id=world.users["cl"].org_unit_id,
            ledger="person",
            field="*",
            level="write",
            row_scope="regions",
            regions=[A + "000"],
            created_by="test",
        )
    )
    await session.flush()
    r = await client.patch(url, json={"region_code": VILLAGE_B}, headers={**world.dept, "If-Match": 'W/"2"'})
    assert_problem(r, 403, "access.region_out_of_scope")
    assert await _region_of(session, "person", rec["id"]) == A + "202"
    # Nor move a record of B it cannot see.
    other = await create(client, world.b, person(62, region=VILLAGE_B))
    r = await client.patch(
        f"{PERSONS}/{other['id']}",
        json={"region_code": VILLAGE_A},
        headers={**world.dept, "If-Match": 'W/"1"'},
    )
    assert_problem(r, 404, "record.not_found")
    assert await _region_of(session, "person", other["id"]) == VILLAGE_B


async def _district_mover(session, world) -> dict:
    # A district-level office that maintains persons and houses everywhere (e.g. 区公安分局 户籍).
    session.add(
        Grant(
            grantee_type="role",
            role="platform_admin",
            ledger="*",
            field="*",
            level="write",
            row_scope="all",
            created_by="test",
        )
    )
    await session.flush()
    return world.admin


async def test_item8_extension_rows_and_links_move_with_their_subject(client, world, session):
    p = await create(client, world.a, person(63))
    h = await client.post(
        HOUSES,
        headers=world.a,
        json={
            "region_code": VILLAGE_A,
            "house_code": VILLAGE_A + "000163",
            "standard_address": "重庆市永川区临江镇某村2组5号",
        },
    )
    assert h.status_code == 201, h.text
    h = h.json()
    link = await client.post(
        "/api/v1/relations/residence",
        headers=world.a,
        json={"from_id": p["id"], "to_id": h["id"], "since": "2020-05-01"},
    )
    assert link.status_code == 201, link.text
    link_id = link.json()["id"]
    d = await client.post(
        DISABILITY,
        headers=world.a,
        json={
            "parent_id": p["id"],
            "certificate_number": p["id_number"] + "42",
            "disability_type": "4",
            "disability_level": "2",
        },
    )
    assert d.status_code == 201, d.text
    d = d.json()
    assert (await client.get(f"{DISABILITY}/{d['id']}", headers=world.a)).status_code == 200

    mover = await _district_mover(session, world)
    # The family moves to township B: the house record first, then the person.
    r = await client.patch(
        f"{HOUSES}/{h['id']}", json={"region_code": VILLAGE_B}, headers={**mover, "If-Match": 'W/"1"'}
    )
    assert r.status_code == 200, r.text
    r = await client.patch(
        f"{PERSONS}/{p['id']}", json={"region_code": VILLAGE_B}, headers={**mover, "If-Match": 'W/"1"'}
    )
    assert r.status_code == 200, r.text

    # Township A: the person, their disability row and their residence link are gone from its area.
    assert_problem(await client.get(f"{DISABILITY}/{d['id']}", headers=world.a), 404, "record.not_found")
    a_list = (await client.get(DISABILITY, headers=world.a)).json()["items"]
    assert d["id"] not in [i["id"] for i in a_list]
    assert_problem(
        await client.get(f"{DISABILITY}/{d['id']}/history", headers=world.a), 404, "record.not_found"
    )
    assert_problem(
        await client.delete(f"/api/v1/relations/residence/{link_id}", headers=world.a),
        404,
        "record.not_found",
    )

    # Township B: reads all of it, in its own area.
    got = await client.get(f"{DISABILITY}/{d['id']}", headers=world.b)
    assert got.status_code == 200, got.text
    assert got.json()["region_code"] == VILLAGE_B and got.json()["disability_type"] == "4"
    assert d["id"] in [i["id"] for i in (await client.get(DISABILITY, headers=world.b)).json()["items"]]
    ext = (await client.get(f"{PERSONS}/{p['id']}/related/disability", headers=world.b)).json()
    assert [i["id"] for i in ext["items"]] == [d["id"]]
    res = (await client.get(f"{PERSONS}/{p['id']}/related/residence", headers=world.b)).json()
    assert [(i["id"], i["link_id"]) for i in res["items"]] == [(h["id"], link_id)]
    links = tables().relations["residence"]
    assert (
        await session.execute(select(links.c.region_code).where(links.c.id == link_id))
    ).scalar_one() == VILLAGE_B
    assert await _region_of(session, "disability", d["id"]) == VILLAGE_B

    # The move is in the extension row's history and in the audit log.
    hist = (await client.get(f"{DISABILITY}/{d['id']}/history", headers=world.b)).json()["items"]
    moved = [x for x in hist if x["field"] == "region_code"]
    assert [(x["before"], x["after"]) for x in moved] == [(VILLAGE_A, VILLAGE_B)]
    assert moved[0]["actor"].endswith(":admin")
    audit = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "move"))).all()
    by_ledger = {(e.ledger, tuple(e.record_ids)): e for e in audit}
    assert ("disability", (d["id"],)) in by_ledger
    assert by_ledger[("disability", (d["id"],))].detail["to"] == VILLAGE_B
    rel_moves = [e for e in audit if e.detail.get("relation") == "residence"]
    assert len(rel_moves) == 1 and rel_moves[0].detail["link_ids"] == [link_id]
    assert rel_moves[0].detail["from"] == VILLAGE_A and rel_moves[0].detail["to"] == VILLAGE_B

    # B now owns the link: it may remove it.
    r = await client.delete(f"/api/v1/relations/residence/{link_id}", headers=world.b)
    assert r.status_code == 204, r.text


async def test_item8_links_of_the_target_side_stay_with_their_source(client, world, session):
    """A residence link belongs to the person: when only the house moves, the link stays with the person."""
    p = await create(client, world.a, person(64))
    h = (
        await client.post(
            HOUSES,
            headers=world.a,
            json={
                "region_code": VILLAGE_A,
                "house_code": VILLAGE_A + "000164",
                "standard_address": "重庆市永川区临江镇某村2组6号",
            },
        )
    ).json()
    link = (
        await client.post(
            "/api/v1/relations/residence", headers=world.a, json={"from_id": p["id"], "to_id": h["id"]}
        )
    ).json()
    mover = await _district_mover(session, world)
    r = await client.patch(
        f"{HOUSES}/{h['id']}", json={"region_code": B + "202"}, headers={**mover, "If-Match": 'W/"1"'}
    )
    assert r.status_code == 200, r.text
    links = tables().relations["residence"]
    assert (
        await session.execute(select(links.c.region_code).where(links.c.id == link["id"]))
    ).scalar_one() == VILLAGE_A
