"""Grants API, effective permissions, masking scenarios and the audit chain."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from app.access import audit_chain
from app.catalog.validators import make_id_card
from tests.factories import api_key_headers, make_org_unit, make_service_account
from tests.ledger.conftest import VILLAGE_A, VILLAGE_B
from tests.ledger.test_records import PERSONS, assert_problem, create, person


async def grant(client, world, **body):
    r = await client.post("/api/v1/grants", json=body, headers=world.admin)
    assert r.status_code == 201, r.text
    return r.json()


async def disabled_person(client, headers, i, region=VILLAGE_A):
    p = await create(
        client, headers, {**person(i, region=region), "is_disabled": True, "disability_level": "2"}
    )
    d = await client.post(
        "/api/v1/ledgers/disability/records",
        headers=headers,
        json={
            "parent_id": p["id"],
            "certificate_number": p["id_number"] + "42",
            "disability_type": "4",
            "disability_level": "2",
            "subsidy_amount": "120.00",
        },
    )
    assert d.status_code == 201, d.text
    return p, d.json()


async def test_department_reads_disability_fields_with_masked_ids_across_townships(client, world):
    tb = {**world.b}
    pa, _ = await disabled_person(client, world.a, 1)
    pb, _ = await disabled_person(client, tb, 2, region=VILLAGE_B)
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="disability",
        field="*",
        level="read",
        row_scope="all",
    )
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="person",
        field="*",
        level="read",
        row_scope="all",
    )
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="person",
        field="id_number",
        level="masked",
        row_scope="all",
    )
    # The certificate number embeds the ID number: it must be masked too, or the mask is moot.
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="disability",
        field="certificate_number",
        level="masked",
        row_scope="all",
    )
    listed = (await client.get(PERSONS, params={"is_disabled": "eq.true"}, headers=world.dept)).json()[
        "items"
    ]
    by_id = {p["id"]: p for p in listed}
    assert set(by_id) == {pa["id"], pb["id"]}
    for raw in (pa, pb):
        got = by_id[raw["id"]]
        assert got["id_number"] == raw["id_number"][:6] + "********" + raw["id_number"][-4:]
        assert got["disability_level"] == "2" and got["phone"] == raw["phone"]  # read grant lifts the mask
    dis = (await client.get("/api/v1/ledgers/disability/records", headers=world.dept)).json()["items"]
    assert {d["parent_id"] for d in dis} == {pa["id"], pb["id"]}
    assert all(d["disability_type"] == "4" and d["certificate_number"].count("*") >= 8 for d in dis)
    # Township A still sees nothing of B.
    a_list = (await client.get(PERSONS, headers=world.a)).json()["items"]
    assert [p["id"] for p in a_list] == [pa["id"]]


async def test_service_account_without_grant_sees_nothing(client, world, session):
    await create(client, world.a, person(3))
    unit = await make_org_unit(
        session,
        code="sys:x",
        name="某系统",
        kind="department",
        region_code="500118000000",
        department_code="mzj",
    )
    _, key = await make_service_account(session, unit)
    r = await client.get(PERSONS, headers=api_key_headers(key))
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get(PERSONS, params={"name": "eq.张三"}, headers=api_key_headers(key))
    assert_problem(r, 403, "access.field_hidden")


async def test_hidden_field_cannot_be_filtered_sorted_or_returned(client, world):
    rec = await create(client, world.a, person(4))
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="person",
        field="phone",
        level="hidden",
    )
    got = (await client.get(PERSONS, headers=world.dept)).json()["items"][0]
    assert "phone" not in got and rec["phone"] not in str(got)
    assert_problem(
        await client.get(PERSONS, params={"phone": f"eq.{rec['phone']}"}, headers=world.dept),
        403,
        "access.field_hidden",
    )
    assert_problem(
        await client.get(PERSONS, params={"order": "phone.desc"}, headers=world.dept),
        403,
        "access.field_hidden",
    )
    assert_problem(
        await client.get(PERSONS, params={"phone": "is_null.true"}, headers=world.dept),
        403,
        "access.field_hidden",
    )


async def test_masked_field_exact_lookup_only_when_granted_and_still_masked(client, world):
    rec = await create(client, world.a, person(5))
    assert_problem(
        await client.get(PERSONS, params={"id_number": f"eq.{rec['id_number']}"}, headers=world.dept),
        403,
        "access.field_masked",
    )
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="person",
        field="id_number",
        level="masked",
        allow_lookup=True,
    )
    r = await client.get(PERSONS, params={"id_number": f"eq.{rec['id_number']}"}, headers=world.dept)
    items = r.json()["items"]
    assert [i["id"] for i in items] == [rec["id"]] and rec["id_number"] not in r.text
    assert_problem(
        await client.get(PERSONS, params={"id_number": "prefix.5001"}, headers=world.dept),
        403,
        "access.field_masked",
    )


async def test_history_obeys_masks(client, world):
    rec = await create(client, world.a, person(6))
    new_phone = "13987654321"
    await client.patch(
        f"{PERSONS}/{rec['id']}", json={"phone": new_phone}, headers={**world.a, "If-Match": 'W/"1"'}
    )
    r = await client.get(f"{PERSONS}/{rec['id']}/history", headers=world.dept)
    assert r.status_code == 200
    assert new_phone not in r.text and rec["phone"] not in r.text and rec["id_number"] not in r.text
    change = next(h for h in r.json()["items"] if h["field"] == "phone" and h["op"] == "update")
    assert change["after"] == "139****4321"


async def test_write_without_write_grant_is_403_and_changes_nothing(client, world):
    rec = await create(client, world.a, person(7))
    await grant(
        client,
        world,
        grantee_type="user",
        username="tb",
        ledger="person",
        field="*",
        level="read",
        row_scope="regions",
        regions=["500118101000"],
    )
    r = await client.patch(
        f"{PERSONS}/{rec['id']}", json={"name": "改名"}, headers={**world.b, "If-Match": 'W/"1"'}
    )
    assert_problem(r, 403, "access.field_readonly")
    assert (await client.get(f"{PERSONS}/{rec['id']}", headers=world.a)).json()["name"] == rec["name"]
    # The read grant over A's region does let tb read it.
    assert (await client.get(f"{PERSONS}/{rec['id']}", headers=world.b)).status_code == 200


async def test_effective_permissions_explain_each_field(client, world):
    g = await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="person",
        field="phone",
        level="hidden",
    )
    r = await client.get(
        "/api/v1/access/effective", params={"ledger": "person", "username": "cl"}, headers=world.admin
    )
    fields = {f["field"]: f for f in r.json()["fields"]}
    assert fields["phone"]["level"] == "hidden" and str(g["id"]) in fields["phone"]["reason"]
    assert fields["id_number"]["level"] == "masked" and fields["id_number"]["reason"] == "default: sensitive"
    assert fields["sex"]["level"] == "read"
    own = await client.get("/api/v1/access/effective", params={"ledger": "person"}, headers=world.dept)
    assert {f["field"]: f["level"] for f in own.json()["fields"]}["phone"] == "hidden"
    assert_problem(
        await client.get(
            "/api/v1/access/effective", params={"ledger": "person", "username": "ta"}, headers=world.dept
        ),
        403,
        "auth.role_required",
    )


async def test_grant_validation_and_admin_only(client, world):
    r = await client.post(
        "/api/v1/grants",
        headers=world.admin,
        json={
            "grantee_type": "role",
            "role": "wizard",
            "ledger": "person",
            "field": "shoe_size",
            "level": "read",
        },
    )
    paths = {e["path"] for e in assert_problem(r, 422, "validation.failed")["errors"]}
    assert {"body.role", "body.field"} <= paths
    r = await client.post(
        "/api/v1/grants",
        headers=world.a,
        json={
            "grantee_type": "role",
            "role": "township_admin",
            "ledger": "*",
            "field": "*",
            "level": "write",
        },
    )
    assert_problem(r, 403, "auth.role_required")


async def test_audit_chain_records_writes_sensitive_reads_and_grants_and_detects_tampering(
    client, world, session, connection
):
    rec = await create(client, world.a, person(8))  # township admin: write => reads IDs unmasked
    await client.get(f"{PERSONS}/{rec['id']}", headers=world.a)
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="person",
        field="phone",
        level="hidden",
    )
    log = (await client.get("/api/v1/audit", headers=world.admin)).json()["items"]
    actions = [e["action"] for e in log]
    assert "create" in actions and "read_sensitive" in actions and "grant.create" in actions
    read = next(e for e in log if e["action"] == "read_sensitive")
    assert rec["id"] in read["record_ids"] and "id_number" in read["fields"]
    assert rec["id_number"] not in str(log)
    only = (
        await client.get(
            "/api/v1/audit", params={"action": "read_sensitive", "record_id": rec["id"]}, headers=world.admin
        )
    ).json()["items"]
    assert only and all(e["action"] == "read_sensitive" and rec["id"] in e["record_ids"] for e in only)
    assert_problem(
        await client.get("/api/v1/audit", params={"since": "yesterday"}, headers=world.admin),
        422,
        "validation.failed",
    )
    assert await audit_chain.seal_pending(session) >= 3  # what the service's chainer does each second
    report = await audit_chain.verify(session)
    assert report.ok and report.checked >= 3 and report.unsealed == 0
    # Tamper as a superuser would: bypass the append-only trigger and edit a row.
    await connection.execute(text("SET LOCAL session_replication_role = replica"))
    await connection.execute(
        text("UPDATE audit_log SET actor = 'user:0:nobody' WHERE id = :id"), {"id": read["id"]}
    )
    await connection.execute(text("SET LOCAL session_replication_role = origin"))
    session.expire_all()
    broken = await audit_chain.verify(session)
    assert broken.broken_at == read["id"] and "edited" in broken.reason


async def test_audit_log_is_append_only(session, connection, client, world):
    await create(client, world.a, person(9))
    import pytest
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError):
        async with connection.begin_nested():
            await connection.execute(text("DELETE FROM audit_log"))


def test_id_helpers_are_consistent():
    assert make_id_card("500118", date(1980, 1, 1), 1, "1")[:6] == "500118"
