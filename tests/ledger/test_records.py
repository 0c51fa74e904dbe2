"""Records API: create/read/update/delete, row scope, optimistic concurrency, history, problem shape."""

from __future__ import annotations

from datetime import date

import pytest

from app.catalog.validators import make_id_card
from tests.ledger.conftest import VILLAGE_A, VILLAGE_B

PERSONS = "/api/v1/ledgers/person/records"


def person(i: int, *, region: str = VILLAGE_A, sex: str = "2", birth: date = date(1980, 5, 17)) -> dict:
    return {
        "region_code": region,
        "name": f"王{'秀英丽华芳敏'[i % 6]}{i}",
        "id_number": make_id_card("500118", birth, i, sex),
        "ethnicity": "01",
        "phone": f"1380000{i:04d}",
    }


async def create(client, headers, body) -> dict:
    r = await client.post(PERSONS, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def assert_problem(r, status: int, code: str):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["code"] == code and body["type"].endswith(code)
    assert body["title"]
    return body


async def test_create_derives_birth_and_sex_from_id_number(client, world):
    rec = await create(client, world.a, person(1, sex="2", birth=date(1975, 3, 9)))
    assert rec["birth_date"] == "1975-03-09" and rec["sex"] == "2"
    assert rec["version"] == 1 and rec["region_code"] == VILLAGE_A
    assert rec["provenance"]["name"]["source"] == "township:500118101000"


async def test_full_width_and_lowercase_x_are_normalised(client, world):
    body = person(2)
    number = make_id_card("500118", date(1990, 1, 1), 7, "1")
    while not number.endswith("X"):  # find a seq whose check char is X
        number = make_id_card("500118", date(1990, 1, 1), int(number[14:17]) + 2, "1")
    body["id_number"] = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c.lower() for c in number)
    rec = await create(client, world.a, body)
    assert rec["id_number"] == number


async def test_township_b_cannot_read_list_update_or_learn_of_a_record_in_a(client, world):
    rec = await create(client, world.a, person(3))
    url = f"{PERSONS}/{rec['id']}"
    missing = f"{PERSONS}/{rec['id'] + 10_000_000}"
    for target in (url, missing):
        r = await client.get(target, headers=world.b)
        assert_problem(r, 404, "record.not_found")
    # The answer for "exists elsewhere" and "does not exist" is byte-identical apart from the path.
    a = (await client.get(url, headers=world.b)).json()
    b = (await client.get(missing, headers=world.b)).json()
    assert {k: v for k, v in a.items() if k != "instance"} == {k: v for k, v in b.items() if k != "instance"}
    listed = (await client.get(PERSONS, headers=world.b)).json()
    assert rec["id"] not in [i["id"] for i in listed["items"]]
    r = await client.patch(url, json={"name": "改名"}, headers={**world.b, "If-Match": 'W/"1"'})
    assert_problem(r, 404, "record.not_found")
    assert_problem(await client.delete(url, headers=world.b), 404, "record.not_found")
    assert_problem(await client.get(url + "/history", headers=world.b), 404, "record.not_found")
    still = (await client.get(url, headers=world.a)).json()
    assert still["name"] == rec["name"] and still["version"] == 1


async def test_cannot_create_in_or_move_into_another_township(client, world):
    r = await client.post(PERSONS, json=person(4, region=VILLAGE_B), headers=world.a)
    body = assert_problem(r, 403, "access.region_out_of_scope")
    assert body["errors"][0]["path"] == "body.region_code"
    rec = await create(client, world.a, person(5))
    r = await client.patch(
        f"{PERSONS}/{rec['id']}", json={"region_code": VILLAGE_B}, headers={**world.a, "If-Match": 'W/"1"'}
    )
    assert_problem(r, 403, "access.region_out_of_scope")
    assert (await client.get(f"{PERSONS}/{rec['id']}", headers=world.a)).json()["region_code"] == VILLAGE_A


async def test_stale_version_gets_409_and_changes_nothing(client, world):
    rec = await create(client, world.a, person(6))
    url = f"{PERSONS}/{rec['id']}"
    r = await client.patch(url, json={"name": "李四"}, headers={**world.a, "If-Match": 'W/"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.headers["etag"] == 'W/"2"'
    r = await client.patch(url, json={"name": "赵五", "version": 1}, headers=world.a)
    body = assert_problem(r, 409, "record.version_conflict")
    assert body["current_version"] == 2
    now = (await client.get(url, headers=world.a)).json()
    assert now["name"] == "李四" and now["version"] == 2
    assert_problem(
        await client.patch(url, json={"name": "x"}, headers=world.a), 428, "record.version_required"
    )


async def test_history_keeps_every_change_with_source_and_actor(client, world):
    rec = await create(client, world.a, person(7))
    url = f"{PERSONS}/{rec['id']}"
    await client.patch(
        url, json={"marital_status": "20", "phone": "13912345678"}, headers={**world.a, "If-Match": 'W/"1"'}
    )
    await client.delete(url, headers={**world.a, "If-Match": 'W/"2"'})
    assert_problem(await client.get(url, headers=world.a), 404, "record.not_found")
    hist = (await client.get(url + "/history", headers=world.a)).json()["items"]
    ops = [(h["op"], h["field"]) for h in hist]
    assert ops[0] == ("delete", None)
    changes = {h["field"]: h for h in hist if h["op"] == "update"}
    assert changes["marital_status"]["before"] is None and changes["marital_status"]["after"] == "20"
    assert changes["phone"]["before"] == person(7)["phone"] and changes["phone"]["after"] == "13912345678"
    assert all(h["actor"].startswith("user:") and h["actor"].endswith(":ta") for h in hist)
    created = {h["field"] for h in hist if h["op"] == "create"}
    assert {"name", "id_number", "birth_date", "sex"} <= created


async def test_unchanged_update_does_not_bump_version(client, world):
    rec = await create(client, world.a, person(8))
    r = await client.patch(
        f"{PERSONS}/{rec['id']}", json={"name": rec["name"]}, headers={**world.a, "If-Match": 'W/"1"'}
    )
    assert r.json()["version"] == 1


async def test_invalid_values_are_reported_per_field_without_echo(client, world):
    body = person(9)
    bad_id = body["id_number"][:-1] + ("0" if body["id_number"][-1] != "0" else "1")
    body.update(id_number=bad_id, phone="77777", ethnicity="不存在的民族", birth_date="2023-02-29")
    r = await client.post(PERSONS, json=body, headers=world.a)
    problem = assert_problem(r, 422, "validation.failed")
    paths = {e["path"]: e["code"] for e in problem["errors"]}
    assert paths["body.id_number"] == "id_card.checksum"
    assert paths["body.phone"] == "phone.format"
    assert paths["body.ethnicity"] == "code.unknown"
    assert paths["body.birth_date"] == "date.invalid"
    assert bad_id not in r.text and "77777" not in r.text and "不存在的民族" not in r.text
    listed = (await client.get(PERSONS, headers=world.a)).json()
    assert listed["items"] == []  # nothing half-written


async def test_missing_required_and_unknown_fields(client, world):
    r = await client.post(
        PERSONS, json={"region_code": VILLAGE_A, "name": "张三", "shoe_size": 42}, headers=world.a
    )
    problem = assert_problem(r, 422, "validation.failed")
    paths = {e["path"]: e["code"] for e in problem["errors"]}
    assert paths["body.id_number"] == "field.required"
    assert paths["body.shoe_size"] == "field.unknown"


async def test_birth_date_disagreeing_with_id_number_is_refused(client, world):
    body = person(10, birth=date(1980, 5, 17))
    body["birth_date"] = "1981-05-17"
    problem = assert_problem(await client.post(PERSONS, json=body, headers=world.a), 422, "validation.failed")
    assert problem["errors"][0]["path"] == "body.birth_date"
    assert problem["errors"][0]["code"] == "id_card.birth_mismatch"


async def test_duplicate_natural_key_is_409_without_the_value(client, world):
    body = person(11)
    await create(client, world.a, body)
    again = {**body, "name": "另一个人"}
    r = await client.post(PERSONS, json=again, headers=world.a)
    problem = assert_problem(r, 409, "record.duplicate")
    assert problem["errors"][0]["path"] == "body.id_number"
    assert body["id_number"] not in r.text


async def test_uscc_failing_check_digit_is_kept_with_a_flag(client, world):
    from app.catalog.validators import make_uscc, uscc_check_char

    good = make_uscc("500118", 1234)
    wrong = good[:-1] + next(c for c in "0123456789" if c != uscc_check_char(good[:17]))
    url = "/api/v1/ledgers/organisation/records"
    ok = await client.post(
        url,
        json={"region_code": VILLAGE_A, "credit_code": good, "name": "甲公司", "org_type": "1"},
        headers=world.a,
    )
    assert ok.status_code == 201 and ok.json()["flags"] == {}
    old = await client.post(
        url,
        json={"region_code": VILLAGE_A, "credit_code": wrong, "name": "乙公司", "org_type": "1"},
        headers=world.a,
    )
    assert old.status_code == 201 and old.json()["flags"] == {"credit_code": "checksum"}


async def test_filters_sort_and_keyset_pagination_cover_every_row_once(client, world):
    made = [
        await create(
            client,
            world.a,
            person(20 + i, sex="1" if i % 3 else "2", birth=date(1950 + i * 3, 1 + i % 12, 1 + i)),
        )
        for i in range(12)
    ]
    women = (await client.get(PERSONS, params={"sex": "eq.2"}, headers=world.a)).json()["items"]
    assert {p["id"] for p in women} == {m["id"] for m in made if m["sex"] == "2"}
    older = (await client.get(PERSONS, params={"birth_date": "lt.1965-01-01"}, headers=world.a)).json()[
        "items"
    ]
    assert {p["id"] for p in older} == {m["id"] for m in made if m["birth_date"] < "1965-01-01"}
    chosen = [made[0]["id"], made[5]["id"]]
    r = await client.get(PERSONS, params={"id": f"in.{chosen[0]},{chosen[1]}"}, headers=world.a)
    assert sorted(p["id"] for p in r.json()["items"]) == sorted(chosen)
    seen, cursor = [], None
    while True:
        params = {"order": "birth_date.desc", "limit": 5, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(PERSONS, params=params, headers=world.a)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [p["id"] for p in seen] == [
        m["id"] for m in sorted(made, key=lambda m: m["birth_date"], reverse=True)
    ]


async def test_bad_filter_and_order_get_problem_with_path(client, world):
    r = await client.get(PERSONS, params={"sex": "like.1"}, headers=world.a)
    assert assert_problem(r, 422, "query.invalid")["errors"][0]["path"] == "query.sex"
    r = await client.get(PERSONS, params={"birth_date": "gte.not-a-date"}, headers=world.a)
    assert assert_problem(r, 422, "query.invalid")["errors"][0]["path"] == "query.birth_date"
    r = await client.get(PERSONS, params={"cursor": "garbage!"}, headers=world.a)
    assert_problem(r, 400, "query.cursor_invalid")  # issue 8 item 15: a bad cursor is a 400


async def test_department_sees_ids_masked_and_cannot_filter_or_sort_by_them(client, world):
    rec = await create(client, world.a, person(30))
    items = (await client.get(PERSONS, headers=world.dept)).json()["items"]
    got = next(i for i in items if i["id"] == rec["id"])
    assert got["id_number"] == rec["id_number"][:6] + "********" + rec["id_number"][-4:]
    assert got["phone"] == rec["phone"][:3] + "****" + rec["phone"][-4:]
    assert got["name"] == rec["name"]  # internal: readable by default inside the jurisdiction
    r = await client.get(PERSONS, params={"id_number": f"eq.{rec['id_number']}"}, headers=world.dept)
    assert_problem(r, 403, "access.field_masked")
    r = await client.get(PERSONS, params={"order": "id_number"}, headers=world.dept)
    assert_problem(r, 403, "access.field_masked")
    r = await client.patch(
        f"{PERSONS}/{rec['id']}", json={"name": "x"}, headers={**world.dept, "If-Match": 'W/"1"'}
    )
    assert_problem(r, 403, "access.field_readonly")


async def test_related_records_through_relations_and_extensions(client, world):
    p = await create(client, world.a, person(40))
    h = await client.post(
        "/api/v1/ledgers/house/records",
        headers=world.a,
        json={
            "region_code": VILLAGE_A,
            "house_code": VILLAGE_A + "000123",
            "standard_address": "重庆市永川区临江镇某村1组1号",
            "floor_area": "88.50",
        },
    )
    assert h.status_code == 201, h.text
    link = await client.post(
        "/api/v1/relations/residence",
        headers=world.a,
        json={"from_id": p["id"], "to_id": h.json()["id"], "since": "2020-05-01"},
    )
    assert link.status_code == 201, link.text
    res = (await client.get(f"{PERSONS}/{p['id']}/related/residence", headers=world.a)).json()
    assert res["ledger"] == "house" and res["items"][0]["floor_area"] == 88.5
    assert res["items"][0]["link_since"] == "2020-05-01"
    # The relation to the head belongs to the household (户), not to the residence.
    bad = await client.post(
        "/api/v1/relations/residence",
        headers=world.a,
        json={"from_id": p["id"], "to_id": h.json()["id"], "relation_to_head": "01"},
    )
    assert bad.status_code == 422 and "relation_to_head" in bad.text
    hh = await client.post(
        "/api/v1/ledgers/household/records",
        headers=world.a,
        json={"region_code": VILLAGE_A, "household_no": VILLAGE_A + "0007", "household_kind": "1"},
    )
    assert hh.status_code == 201, hh.text
    member = await client.post(
        "/api/v1/relations/household_member",
        headers=world.a,
        json={"from_id": p["id"], "to_id": hh.json()["id"], "relation_to_head": "01"},
    )
    assert member.status_code == 201, member.text
    members = (
        await client.get(
            f"/api/v1/ledgers/household/records/{hh.json()['id']}/related/members", headers=world.a
        )
    ).json()
    assert [(i["id"], i["link_relation_to_head"]) for i in members["items"]] == [(p["id"], "01")]
    assert (
        await client.get(
            f"/api/v1/ledgers/household/records/{hh.json()['id']}/related/members", headers=world.b
        )
    ).status_code == 404
    back = (
        await client.get(f"/api/v1/ledgers/house/records/{h.json()['id']}/related/residents", headers=world.a)
    ).json()
    assert [i["id"] for i in back["items"]] == [p["id"]]
    d = await client.post(
        "/api/v1/ledgers/disability/records",
        headers=world.a,
        json={
            "parent_id": p["id"],
            "certificate_number": p["id_number"] + "42",
            "disability_type": "4",
            "disability_level": "2",
        },
    )
    assert d.status_code == 201, d.text
    assert d.json()["region_code"] == VILLAGE_A
    ext = (await client.get(f"{PERSONS}/{p['id']}/related/disability", headers=world.a)).json()
    assert [i["id"] for i in ext["items"]] == [d.json()["id"]]
    assert (await client.get(f"{PERSONS}/{p['id']}/related/disability", headers=world.b)).status_code == 404


@pytest.mark.parametrize("ledger", ["nope", "Person"])
async def test_unknown_ledger(client, world, ledger):
    r = await client.get(f"/api/v1/ledgers/{ledger}/records", headers=world.a)
    assert r.status_code in (404, 422)
    assert r.headers["content-type"].startswith("application/problem+json")
