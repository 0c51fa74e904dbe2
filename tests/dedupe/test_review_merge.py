"""C1-4 against a real ledger, the review queue through the reader's policy, merge and undo."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select, update

from app.access.models import Grant
from app.catalog.validators import make_id_card
from app.db.ledger_tables import tables
from app.dedupe.candidates import enqueue_candidates, find_candidates
from app.dedupe.models import DedupeCandidate
from tests.factories import auth_headers, make_user
from tests.ledger.test_records import assert_problem
from tests.world import VILLAGE_A, VILLAGE_B, A

PERSONS = "/api/v1/ledgers/person/records"
QUEUE = "/api/v1/dedupe/candidates"
ADDRESS = "重庆市永川区中山路街道幸福村3组12号"


async def _person(client, headers, name: str, birth: date, seq: int, **extra: Any) -> dict:
    body = {
        "region_code": VILLAGE_A,
        "name": name,
        "id_number": make_id_card("500118", birth, seq, "1"),
        "residence_address": ADDRESS,
        **extra,
    }
    r = await client.post(PERSONS, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _queue_c1_4(connection, rows: list[dict]) -> list:
    def run(sync_conn):
        found = find_candidates(sync_conn, "person", rows, region_prefix=A)
        enqueue_candidates(sync_conn, "person", found, source="import:batch:7", batch_id=7, rows=rows)
        return found

    return await connection.run_sync(run)


C1_4_ROW = {
    "name": "張三",
    "birth_date": "1960-05-01",
    "residence_address": "重庆市永川區中山路街道幸福村3組12號",
    "phone": "13800001111",
}


async def test_c1_4_traditional_row_without_id_becomes_a_candidate_pair_never_merged(
    client, world, connection
):
    rec = await _person(client, world.a, "张三", date(1960, 5, 1), 11)
    other = await _person(client, world.a, "李四", date(1960, 5, 1), 12)
    # The same name and birth date in township B is outside the importing township's area.
    r = await client.post(
        PERSONS,
        headers=world.b,
        json={
            "region_code": VILLAGE_B,
            "name": "张三",
            "residence_address": ADDRESS,
            "id_number": make_id_card("500118", date(1960, 5, 1), 15, "1"),
        },
    )
    assert r.status_code == 201, r.text
    found = await _queue_c1_4(connection, [C1_4_ROW, {"name": "王五", "birth_date": "1988-09-30"}])
    # Not 李四, not B's record, nothing for 王五.
    assert [(c.row_index, c.record_id) for c in found] == [(0, rec["id"])]
    assert found[0].score > 0.99 and "姓名一致（繁简、全半角折叠后）" in found[0].reasons
    # Queued once, even when the same batch is scored again.
    await _queue_c1_4(connection, [C1_4_ROW])
    body = (await client.get(QUEUE, headers=world.a)).json()
    assert [(i["record_id"], i["row_index"], i["status"]) for i in body["items"]] == [(rec["id"], 0, "open")]
    # Never merged: the record is unchanged and no third person exists.
    now = (await client.get(f"{PERSONS}/{rec['id']}", headers=world.a)).json()
    assert now["version"] == rec["version"] and now["name"] == "张三" and now.get("phone") is None
    t = tables().ledgers["person"]
    alive = (
        await connection.execute(select(func.count()).select_from(t).where(t.c.deleted_at.is_(None)))
    ).scalar()
    assert alive == 3 and other["id"] != rec["id"]


async def test_accepting_an_incoming_candidate_fills_the_record_and_undo_restores_it(
    client, world, connection
):
    rec = await _person(client, world.a, "张三", date(1960, 5, 1), 21)
    await _queue_c1_4(connection, [C1_4_ROW])
    cand = (await client.get(QUEUE, headers=world.a)).json()["items"][0]
    r = await client.post(f"{QUEUE}/{cand['id']}/accept", headers=world.a)
    assert r.status_code == 200, r.text
    assert (
        r.json()["changed"] == ["phone"] and r.json()["loser_id"] is None
    )  # the name stays as the ledger has it
    now = (await client.get(f"{PERSONS}/{rec['id']}", headers=world.a)).json()
    assert now["phone"] == "13800001111" and now["name"] == "张三"
    assert now["provenance"]["phone"]["source"] == "import:batch:7"
    again = await client.post(f"{QUEUE}/{cand['id']}/accept", headers=world.a)
    assert_problem(again, 409, "dedupe.candidate_decided")
    u = await client.post(f"/api/v1/dedupe/merges/{r.json()['merge_id']}/undo", headers=world.a)
    assert u.status_code == 200, u.text
    assert u.json() == {"merge_id": r.json()["merge_id"], "restored": ["phone"], "conflicts": []}
    back = (await client.get(f"{PERSONS}/{rec['id']}", headers=world.a)).json()
    assert back.get("phone") is None and "phone" not in back["provenance"]
    assert_problem(
        await client.post(f"/api/v1/dedupe/merges/{r.json()['merge_id']}/undo", headers=world.a),
        409,
        "dedupe.merge_undone",
    )


async def test_record_pair_merge_survivorship_relinks_and_undo(client, world, session):
    surv = await _person(client, world.a, "张三", date(1960, 5, 1), 31, phone="13800000001")
    loser = await _person(
        client, world.a, "張三", date(1960, 5, 1), 33, phone="13800000002", remark="旧台账补录"
    )
    t = tables().ledgers["person"]
    # The loser's marital status came from 民政 (owner mzj) years ago; the survivor's from a
    # township last week: the owner's value survives. The loser's phone is the newer one: recency.
    # The survivor's name and ID number came from the city platform (their source): they stay,
    # although the loser's (township-typed) ones are newer.
    old, new = "2020-01-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00"
    await session.execute(
        update(t)
        .where(t.c.id == loser["id"])
        .values(
            marital_status="20",
            provenance=t.c.provenance.op("||")(
                {
                    "marital_status": {"source": "department:mzj", "at": old},
                    "phone": {"source": "township:500118101000", "at": new},
                }
            ),
        )
    )
    await session.execute(
        update(t)
        .where(t.c.id == surv["id"])
        .values(
            marital_status="10",
            provenance=t.c.provenance.op("||")(
                {
                    "marital_status": {"source": "township:500118101000", "at": new},
                    "phone": {"source": "township:500118101000", "at": old},
                    "name": {"source": "city_platform", "at": old},
                    "id_number": {"source": "city_platform", "at": old},
                    "birth_date": {"source": "city_platform", "at": old},
                }
            ),
        )
    )
    house = await client.post(
        "/api/v1/ledgers/house/records",
        headers=world.a,
        json={
            "region_code": VILLAGE_A,
            "house_code": f"{VILLAGE_A}000901",
            "standard_address": ADDRESS,
        },
    )
    assert house.status_code == 201, house.text
    link = await client.post(
        "/api/v1/relations/residence",
        headers=world.a,
        json={"from_id": loser["id"], "to_id": house.json()["id"]},
    )
    assert link.status_code == 201, link.text
    cand = DedupeCandidate(
        ledger="person",
        region_code=VILLAGE_A,
        record_id=surv["id"],
        other_id=loser["id"],
        source="scan",
        score=0.97,
        reasons=["姓名一致（繁简、全半角折叠后）"],
    )
    session.add(cand)
    await session.flush()

    r = await client.post(f"{QUEUE}/{cand.id}/accept", headers=world.a, json={"survivor_id": surv["id"]})
    assert r.status_code == 200, r.text
    assert set(r.json()["changed"]) == {"marital_status", "phone", "remark"} and r.json()["relinked"] == 1
    now = (await client.get(f"{PERSONS}/{surv['id']}", headers=world.a)).json()
    assert now["marital_status"] == "20" and now["phone"] == "13800000002" and now["remark"] == "旧台账补录"
    assert now["id_number"] == surv["id_number"] and now["name"] == "张三"  # the platform's values stay
    assert (await client.get(f"{PERSONS}/{loser['id']}", headers=world.a)).status_code == 404  # soft-deleted
    res = (await client.get(f"{PERSONS}/{surv['id']}/related/residence", headers=world.a)).json()
    assert [i["id"] for i in res["items"]] == [house.json()["id"]]
    hist = (await client.get(f"{PERSONS}/{surv['id']}/history", headers=world.a)).json()["items"]
    assert any(h["source"] == f"dedupe:merge:{r.json()['merge_id']}" for h in hist)

    u = await client.post(f"/api/v1/dedupe/merges/{r.json()['merge_id']}/undo", headers=world.a)
    assert u.status_code == 200, u.text
    back = (await client.get(f"{PERSONS}/{surv['id']}", headers=world.a)).json()
    assert back["marital_status"] == "10" and back["phone"] == "13800000001" and back.get("remark") is None
    assert (await client.get(f"{PERSONS}/{loser['id']}", headers=world.a)).status_code == 200
    res = (await client.get(f"{PERSONS}/{loser['id']}/related/residence", headers=world.a)).json()
    assert [i["id"] for i in res["items"]] == [house.json()["id"]]
    reopened = (await client.get(QUEUE, headers=world.a)).json()["items"]
    assert [i["id"] for i in reopened] == [cand.id]


async def test_undo_reports_fields_edited_since_instead_of_overwriting(client, world, session):
    loser = await _person(client, world.a, "張三", date(1960, 5, 1), 43, phone="13800000002")
    surv = await _person(client, world.a, "张三", date(1960, 5, 1), 41)  # newer: its values win, phone fills
    cand = DedupeCandidate(
        ledger="person",
        region_code=VILLAGE_A,
        record_id=surv["id"],
        other_id=loser["id"],
        source="scan",
        score=0.9,
        reasons=[],
    )
    session.add(cand)
    await session.flush()
    r = await client.post(f"{QUEUE}/{cand.id}/accept", headers=world.a)
    assert r.status_code == 200 and r.json()["changed"] == ["phone"]
    cur = (await client.get(f"{PERSONS}/{surv['id']}", headers=world.a)).json()
    e = await client.patch(
        f"{PERSONS}/{surv['id']}",
        headers={**world.a, "If-Match": f'W/"{cur["version"]}"'},
        json={"phone": "13900000009"},
    )
    assert e.status_code == 200, e.text
    u = await client.post(f"/api/v1/dedupe/merges/{r.json()['merge_id']}/undo", headers=world.a)
    assert u.json()["conflicts"] == ["phone"] and u.json()["restored"] == []
    assert (await client.get(f"{PERSONS}/{surv['id']}", headers=world.a)).json()["phone"] == "13900000009"


async def test_reviewer_sees_only_its_area_and_masked_fields_stay_masked(
    client, world, session, connection, settings
):
    rec = await _person(client, world.a, "张三", date(1960, 5, 1), 51, phone="13800001234")
    await _queue_c1_4(connection, [C1_4_ROW])
    # A township clerk of A with no grants: sensitive fields (phone, ID, address) masked by default.
    clerk = await make_user(
        session, username="clerk_a", org_unit=(await _unit(session, world, "a")), roles=["clerk"]
    )
    mine = (await client.get(QUEUE, headers=auth_headers(settings, clerk))).json()["items"]
    assert [i["record_id"] for i in mine] == [rec["id"]]
    shown = mine[0]
    assert shown["record"]["phone"] == "138****1234" and shown["incoming"]["phone"] == "138****1111"
    assert shown["record"]["id_number"].startswith("500118") and "*" in shown["record"]["id_number"]
    assert shown["record"]["residence_address"].endswith("***") and shown["incoming"][
        "residence_address"
    ].endswith("***")
    assert shown["record"]["name"] == "张三"  # internal: read by default
    # The clerk may not merge (no write on the ledger).
    assert_problem(
        await client.post(f"{QUEUE}/{shown['id']}/accept", headers=auth_headers(settings, clerk)),
        403,
        "dedupe.not_reviewer",
    )
    # The other township sees nothing and gets the same 404 as for a candidate that does not exist.
    assert (await client.get(QUEUE, headers=world.b)).json()["items"] == []
    assert_problem(
        await client.post(f"{QUEUE}/{shown['id']}/accept", headers=world.b), 404, "record.not_found"
    )
    assert_problem(
        await client.post(f"{QUEUE}/{shown['id']}/reject", headers=world.b), 404, "record.not_found"
    )
    assert_problem(await client.post(f"{QUEUE}/999999999/reject", headers=world.b), 404, "record.not_found")
    # Township A's admin (write on everything) reads plain values, and may reject.
    plain = (await client.get(QUEUE, headers=world.a)).json()["items"][0]
    assert plain["record"]["phone"] == "13800001234" and plain["incoming"]["phone"] == "13800001111"
    rj = await client.post(f"{QUEUE}/{shown['id']}/reject", headers=world.a)
    assert rj.status_code == 200 and rj.json()["status"] == "rejected"
    assert (await client.get(QUEUE, headers=world.a)).json()["items"] == []


async def _unit(session, world, username: str):
    from app.org.models import OrgUnit

    return await session.get(OrgUnit, world.users[username].org_unit_id)


_ = Grant  # grants are the world's: township_admin writes everything in its own subtree
