"""Issue 8 items 1, 3 and 7: nothing readable rebuilds a masked value, service accounts get only
their own grants, and a masked field does not tell whether it holds a value.

Every test is two-sided: what must not leak doesn't, and what the caller may read does appear.
"""

from __future__ import annotations

from datetime import date

from tests.access.test_access_rules import disabled_person, grant
from tests.factories import api_key_headers, make_org_unit, make_service_account
from tests.ledger.conftest import VILLAGE_A, VILLAGE_B
from tests.ledger.test_records import PERSONS, assert_problem, create, person

DISABILITY = "/api/v1/ledgers/disability/records"
HOUSES = "/api/v1/ledgers/house/records"
EFFECTIVE = "/api/v1/access/effective"


def id_mask(id_number: str) -> str:
    return id_number[:6] + "********" + id_number[-4:]


def rebuilt(masked_id: str, birth_date: str) -> str:
    """The attack of item 1: region and tail from the mask, digits 7-14 from the birth date."""
    return masked_id[:6] + birth_date.replace("-", "") + masked_id[-4:]


async def svc_with_own_grants(client, world, session, name: str, grants: list[dict]) -> dict:
    unit = await make_org_unit(
        session,
        code=f"sys:{name}",
        name="某系统",
        kind="department",
        region_code="500118000000",
        department_code="mzj",
    )
    _, key = await make_service_account(session, unit, name=name)
    for g in grants:
        await grant(client, world, grantee_type="service_account", service_account=name, **g)
    return api_key_headers(key)


# ---- item 1 ------------------------------------------------------------------------------------


async def test_item1_id_cannot_be_rebuilt_from_birth_date_by_service_account(client, world, session):
    recs = [await create(client, world.a, person(i, birth=date(1971 + i, 4, 20 + i))) for i in (1, 2)]
    # The demo service account's grants: public person fields in plain, the ID masked.
    svc = await svc_with_own_grants(
        client,
        world,
        session,
        "rebuild",
        [
            *[
                {"ledger": "person", "field": f, "level": "read", "row_scope": "all"}
                for f in ("name", "sex", "birth_date", "ethnicity")
            ],
            {"ledger": "person", "field": "id_number", "level": "masked", "row_scope": "all"},
        ],
    )
    r = await client.get(PERSONS, headers=svc)
    assert r.status_code == 200, r.text
    got = {p["id"]: p for p in r.json()["items"]}
    assert set(got) == {rec["id"] for rec in recs}
    for rec in recs:
        p = got[rec["id"]]
        assert rec["id_number"] not in r.text
        assert rebuilt(p["id_number"], str(p["birth_date"])) != rec["id_number"]
        # Still readable: name and sex in plain, the ID's mask, the birth year.
        assert p["name"] == rec["name"] and p["sex"] == rec["sex"]
        assert p["id_number"] == id_mask(rec["id_number"])
        assert p["birth_date"] == rec["birth_date"][:4]
        one = (await client.get(f"{PERSONS}/{rec['id']}", headers=svc)).json()
        assert one["birth_date"] == rec["birth_date"][:4] and rec["birth_date"] not in str(one)
    # The birth date can't be sorted, filtered or grouped on in plain any more either.
    assert_problem(
        await client.get(PERSONS, params={"order": "birth_date.desc"}, headers=svc),
        403,
        "access.field_masked",
    )
    assert_problem(
        await client.get(PERSONS, params={"birth_date": f"eq.{recs[0]['birth_date']}"}, headers=svc),
        403,
        "access.field_masked",
    )


async def test_item1_id_cannot_be_rebuilt_by_department_defaults(client, world):
    rec = await create(client, world.a, person(3, birth=date(1966, 11, 28)))
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
    r = await client.get(f"{PERSONS}/{rec['id']}", headers=world.dept)
    p = r.json()
    assert rebuilt(p["id_number"], str(p["birth_date"])) != rec["id_number"]
    assert p["birth_date"] == "1966" and p["id_number"] == id_mask(rec["id_number"])
    assert p["phone"] == rec["phone"] and p["name"] == rec["name"]
    # The effective permissions show the capped level and why.
    eff = await client.get(EFFECTIVE, params={"ledger": "person"}, headers=world.dept)
    fields = {f["field"]: f for f in eff.json()["fields"]}
    assert fields["birth_date"]["level"] == "masked" and fields["birth_date"]["mask"] == "year"
    assert "capped by person.id_number" in fields["birth_date"]["reason"]
    assert fields["name"]["level"] == "read" and "capped" not in fields["name"]["reason"]
    # Given the ID in plain, the birth date is plain again: the cap follows the source.
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="person",
        field="id_number",
        level="read",
        row_scope="all",
    )
    p = (await client.get(f"{PERSONS}/{rec['id']}", headers=world.dept)).json()
    assert p["birth_date"] == rec["birth_date"] and p["id_number"] == rec["id_number"]


async def test_item1_certificate_number_reveals_no_id_and_no_masked_type_or_level(client, world):
    pa, da = await disabled_person(client, world.a, 4)
    # A department reading the whole disability ledger while the person's ID stays masked.
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
    r = await client.get(f"{DISABILITY}/{da['id']}", headers=world.dept)
    assert r.status_code == 200, r.text
    d = r.json()
    assert pa["id_number"] not in r.text and da["certificate_number"] not in r.text
    assert d["certificate_number"] == id_mask(pa["id_number"]) + "****"
    assert d["disability_type"] == "4" and float(d["subsidy_amount"]) == 120.0  # still readable
    # Type and level masked: the certificate's mask must not show their digits either.
    for f in ("disability_type", "disability_level"):
        await grant(
            client,
            world,
            grantee_type="org_unit",
            org_unit_code="dept:cl",
            ledger="disability",
            field=f,
            level="masked",
            row_scope="all",
        )
    d = (await client.get(f"{DISABILITY}/{da['id']}", headers=world.dept)).json()
    assert d["disability_type"] == "****" and d["disability_level"] == "****"
    assert d["certificate_number"] == id_mask(pa["id_number"]) + "****"
    assert not d["certificate_number"].endswith("42")
    # Whoever reads the ID, the type and the level in plain reads the certificate in plain.
    r = await client.get(f"{DISABILITY}/{da['id']}", headers=world.a)
    assert r.json()["certificate_number"] == da["certificate_number"]
    eff = await client.get(EFFECTIVE, params={"ledger": "disability"}, headers=world.dept)
    cert = {f["field"]: f for f in eff.json()["fields"]}["certificate_number"]
    assert cert["level"] == "masked" and "capped by" in cert["reason"]


async def test_item1_house_owner_id_masked_like_person_id_under_star_read(client, world):
    owner = await create(client, world.a, person(5))
    h = await client.post(
        HOUSES,
        headers=world.a,
        json={
            "region_code": VILLAGE_A,
            "house_code": "500118101201A001",
            "standard_address": "重庆市永川区临江镇临江村1组1号",
            "owner_name": owner["name"],
            "owner_id_number": owner["id_number"],
            "floor_area": "88.50",
        },
    )
    assert h.status_code == 201, h.text
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="house",
        field="*",
        level="read",
        row_scope="all",
    )
    r = await client.get(HOUSES, headers=world.dept)
    assert r.status_code == 200, r.text
    assert owner["id_number"] not in r.text
    got = r.json()["items"][0]
    assert got["owner_id_number"] == id_mask(owner["id_number"])
    assert got["owner_name"] == owner["name"] and float(got["floor_area"]) == 88.5  # the * read still reads
    p = (await client.get(f"{PERSONS}/{owner['id']}", headers=world.dept)).json()
    assert p["id_number"] == id_mask(owner["id_number"])
    assert_problem(
        await client.get(HOUSES, params={"order": "owner_id_number.asc"}, headers=world.dept),
        403,
        "access.field_masked",
    )


# ---- item 3 ------------------------------------------------------------------------------------


async def test_item3_service_account_does_not_inherit_org_unit_grants(client, world, session):
    rec = await create(client, world.a, person(6))
    unit = await make_org_unit(
        session,
        code="sys:inherit",
        name="某系统",
        kind="department",
        region_code="500118000000",
        department_code="mzj",
    )
    _, key = await make_service_account(session, unit, name="inherit-svc")
    svc = api_key_headers(key)
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="sys:inherit",
        ledger="person",
        field="*",
        level="write",
        row_scope="all",
    )
    r = await client.get(PERSONS, headers=svc)
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.patch(
        f"{PERSONS}/{rec['id']}", json={"name": "改名"}, headers={**svc, "If-Match": 'W/"1"'}
    )
    assert r.status_code in (403, 404), r.text
    assert (await client.get(f"{PERSONS}/{rec['id']}", headers=world.a)).json()["name"] == rec["name"]
    eff = (
        await client.get(
            EFFECTIVE, params={"ledger": "person", "service_account": "inherit-svc"}, headers=world.admin
        )
    ).json()
    assert eff["row_scope"] == [] and {f["level"] for f in eff["fields"]} == {"hidden"}
    # Two-sided: what is granted to the account by name does apply.
    await grant(
        client,
        world,
        grantee_type="service_account",
        service_account="inherit-svc",
        ledger="person",
        field="name",
        level="read",
        row_scope="all",
    )
    items = (await client.get(PERSONS, headers=svc)).json()["items"]
    assert [(i["id"], i["name"]) for i in items] == [(rec["id"], rec["name"])]
    assert "phone" not in items[0] and rec["phone"] not in str(items)


# ---- item 7 ------------------------------------------------------------------------------------


async def test_item7_masked_null_looks_like_masked_value(client, world):
    disabled = await create(client, world.a, {**person(7), "is_disabled": True, "disability_level": "2"})
    other = await create(client, world.a, person(8, region=VILLAGE_A))
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
    for f in ("is_disabled", "disability_level", "death_date"):
        await grant(
            client,
            world,
            grantee_type="org_unit",
            org_unit_code="dept:cl",
            ledger="person",
            field=f,
            level="masked",
            row_scope="all",
        )
    items = {p["id"]: p for p in (await client.get(PERSONS, headers=world.dept)).json()["items"]}
    for f in ("is_disabled", "disability_level", "death_date"):
        assert items[disabled["id"]][f] == items[other["id"]][f] == "****", f
    assert items[other["id"]]["name"] == other["name"]  # readable fields still read
    # Nor do the record's provenance and history tell which of the two has a value: both look alike.
    one = {
        rid: (await client.get(f"{PERSONS}/{rid}", headers=world.dept)).json()
        for rid in (disabled["id"], other["id"])
    }
    for rec in one.values():
        assert rec["is_disabled"] == "****" and "is_disabled" not in rec["provenance"]
        assert "name" in rec["provenance"]  # readable fields keep their provenance
    r = await client.patch(
        f"{PERSONS}/{other['id']}",
        json={"is_disabled": True, "phone": "13912345678"},
        headers={**world.a, "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200, r.text
    for rid in (disabled["id"], other["id"]):
        hist = (await client.get(f"{PERSONS}/{rid}/history", headers=world.dept)).json()["items"]
        assert not [h for h in hist if h["field"] in ("is_disabled", "disability_level")], hist
        assert any(h["field"] == "name" for h in hist)
    hist = (await client.get(f"{PERSONS}/{other['id']}/history", headers=world.dept)).json()["items"]
    assert any(h["field"] == "phone" and h["after"] == "13912345678" for h in hist)
    # The township that reads the field sees its history as it is.
    own = (await client.get(f"{PERSONS}/{other['id']}/history", headers=world.a)).json()["items"]
    change = next(h for h in own if h["field"] == "is_disabled" and h["op"] == "update")
    assert change["before"] is None and change["after"] in (True, "true")


async def test_item7_township_b_record_untouched(client, world):
    # Guard for the test above: the masked view is per caller, the owner still sees NULL as NULL.
    rec = await create(client, world.b, person(9, region=VILLAGE_B))
    got = (await client.get(f"{PERSONS}/{rec['id']}", headers=world.b)).json()
    assert got["is_disabled"] is None and got["name"] == rec["name"]


# ---- pure resolution ---------------------------------------------------------------------------


def _principal(kind: str):
    from app.auth.principal import Principal

    return Principal(
        kind=kind,
        id=7,
        name="x",
        org_unit_id=3,
        org_unit_kind="department",
        region_code="500118000000",
        region_prefix="500118",
        roles=frozenset({"dept_admin"}),
    )


def _g(gid: int, ledger: str, field: str, level: str, **who):
    from app.access.models import Grant

    return Grant(
        id=gid, ledger=ledger, field=field, level=level, allow_lookup=True, row_scope="all", regions=[], **who
    )


def test_item1_resolve_caps_derived_fields_across_ledgers_from_the_same_grants():
    from app.access.levels import Level
    from app.access.policy import resolve
    from app.catalog.loader import get_catalog

    cat = get_catalog()
    user = _principal("user")
    grants = [
        (4, _g(1, "*", "*", "read", grantee_type="user", user_id=7)),
        (4, _g(2, "person", "id_number", "masked", grantee_type="user", user_id=7)),
    ]
    house = resolve(user, cat.ledger("house"), grants)
    assert house.fields["owner_id_number"].level == Level.masked
    assert house.fields["owner_id_number"].allow_lookup is False  # a lookup would probe the capped value
    assert "capped by person.id_number" in house.fields["owner_id_number"].reason
    assert house.fields["owner_name"].level == Level.read
    person = resolve(user, cat.ledger("person"), grants)
    assert (
        person.fields["birth_date"].level == Level.masked and person.fields["birth_date"].mask.value == "year"
    )
    assert person.fields["id_number"].allow_lookup is True  # the source keeps its own grant
    dis = resolve(
        user,
        cat.ledger("disability"),
        [
            *grants,
            (4, _g(3, "person", "id_number", "read", grantee_type="user", user_id=7)),
            (4, _g(4, "disability", "disability_level", "hidden", grantee_type="user", user_id=7)),
        ],
    )
    assert dis.fields["certificate_number"].level == Level.hidden
    assert dis.fields["certificate_number"].reason.endswith("capped by disability.disability_level")


def test_item3_resolve_ignores_unit_and_role_grants_for_service_accounts():
    from app.access.levels import Level
    from app.access.policy import _grantee_rank, resolve
    from app.catalog.loader import get_catalog

    svc = _principal("service_account")
    unit = _g(1, "person", "*", "write", grantee_type="org_unit", org_unit_id=3)
    role = _g(2, "person", "*", "write", grantee_type="role", role="dept_admin", org_unit_id=None)
    own = _g(3, "person", "name", "read", grantee_type="service_account", service_account_id=7)
    assert _grantee_rank(unit, svc) is None and _grantee_rank(role, svc) is None
    assert _grantee_rank(own, svc) == 4
    assert _grantee_rank(unit, _principal("user")) is not None  # users of the unit keep it
    pol = resolve(svc, get_catalog().ledger("person"), [(4, own)])
    assert pol.fields["name"].level == Level.read and pol.fields["phone"].level == Level.hidden
    assert not pol.can_write_any()
