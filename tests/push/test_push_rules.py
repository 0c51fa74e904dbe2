"""Department push, acceptance cases C2-1 … C2-5 (docs/push.md)."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.push.conftest import person_id
from tests.world import VILLAGE_A


async def _history(session, record_id: int) -> list:
    return (
        await session.execute(
            text(
                "SELECT op, field, before, after, source FROM ledger_history"
                " WHERE ledger = 'person' AND record_id = :r"
                " AND source LIKE 'department:%' ORDER BY id"
            ),
            {"r": record_id},
        )
    ).all()


async def _row(session, record_id: int):
    return (
        await session.execute(
            text("SELECT version, updated_at, low_income_status, provenance FROM lg_person WHERE id = :r"),
            {"r": record_id},
        )
    ).one()


async def test_c2_1_push_is_visible_to_the_township_at_once_with_its_source(
    client, session, world, sources, person_x
):
    body = [
        {
            "source_event_id": "E1",
            "effective_at": "2024-04-01",
            "id_number": person_x["id_number"],
            "low_income_status": "1",
        }
    ]
    r = await client.post("/api/v1/push/person", headers=sources.mzj, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["counts"]["applied"] == 1 and out["results"][0]["status"] == "applied"
    assert out["results"][0]["record_id"] == person_x["id"] and out["results"][0]["fields"] == [
        "low_income_status"
    ]
    seen = (await client.get(f"/api/v1/ledgers/person/records/{person_x['id']}", headers=world.a)).json()
    assert seen["low_income_status"] == "1"
    prov = seen["provenance"]["low_income_status"]
    assert prov["label"] == "民政 / E1" and prov["event"] == "E1" and prov["source"] == "department:mzj"
    hist = await _history(session, person_x["id"])
    assert [(h.op, h.field, h.after, h.source) for h in hist] == [
        ("update", "low_income_status", "1", "department:mzj/E1")
    ]
    # The township of another area sees neither the record nor the change in its feed.
    feed_b = (await client.get("/api/v1/push/changes?ledger=person", headers=world.b)).json()
    assert feed_b["items"] == []
    feed_a = (await client.get("/api/v1/push/changes?ledger=person", headers=world.a)).json()
    assert [(c["record_id"], c["field"], c["after"], c["source_label"]) for c in feed_a["items"]] == [
        (person_x["id"], "low_income_status", "1", "民政 / E1")
    ]


async def test_c2_2_replaying_an_event_is_already_applied_and_writes_nothing(
    client, session, sources, person_x
):
    body = [
        {
            "source_event_id": "E1",
            "effective_at": "2024-04-01",
            "id_number": person_x["id_number"],
            "low_income_status": "1",
        }
    ]
    assert (await client.post("/api/v1/push/person", headers=sources.mzj, json=body)).status_code == 200
    before = await _row(session, person_x["id"])
    n_hist = len(await _history(session, person_x["id"]))
    # Same event again, even with another value: answered from the event log, nothing written.
    body[0]["low_income_status"] = "2"
    r = (await client.post("/api/v1/push/person", headers=sources.mzj, json=body)).json()
    assert r["results"][0]["status"] == "already_applied" and r["results"][0]["record_id"] == person_x["id"]
    after = await _row(session, person_x["id"])
    assert (after.version, after.updated_at, after.low_income_status) == (
        before.version,
        before.updated_at,
        "1",
    )
    assert len(await _history(session, person_x["id"])) == n_hist == 1
    # A new event with the stored value is unchanged: no history either.
    body[0].update(source_event_id="E1b", low_income_status="1", effective_at="2024-04-02")
    r = (await client.post("/api/v1/push/person", headers=sources.mzj, json=body)).json()
    assert r["results"][0]["status"] == "unchanged"
    assert (await _row(session, person_x["id"])).version == before.version
    assert len(await _history(session, person_x["id"])) == 1


async def test_c2_3_a_late_older_event_is_superseded(client, session, sources, person_x):
    key = person_x["id_number"]
    e2 = [
        {
            "source_event_id": "E2",
            "effective_at": "2024-05-01",
            "id_number": key,
            "low_income_status": "2",
        }
    ]
    e1 = [
        {
            "source_event_id": "E1",
            "effective_at": "2024-04-01",
            "id_number": key,
            "low_income_status": "1",
        }
    ]
    assert (await client.post("/api/v1/push/person", headers=sources.mzj, json=e2)).json()["counts"][
        "applied"
    ] == 1
    r = (await client.post("/api/v1/push/person", headers=sources.mzj, json=e1)).json()
    assert r["results"][0]["status"] == "superseded" and r["results"][0]["superseded"] == [
        "low_income_status"
    ]
    assert (await _row(session, person_x["id"])).low_income_status == "2"
    hist = await _history(session, person_x["id"])
    assert [(h.op, h.before, h.after, h.source) for h in hist] == [
        ("update", None, "2", "department:mzj/E2"),
        ("superseded", "2", "1", "department:mzj/E1"),
    ]
    # In one request the order is effective_at, not the order of the array.
    both = [
        {
            "source_event_id": "E4",
            "effective_at": "2024-07-01",
            "id_number": key,
            "low_income_status": "3",
        },
        {
            "source_event_id": "E3",
            "effective_at": "2024-06-01",
            "id_number": key,
            "low_income_status": "1",
        },
    ]
    r = (await client.post("/api/v1/push/person", headers=sources.mzj, json=both)).json()
    assert [x["status"] for x in r["results"]] == ["applied", "applied"]
    assert (await _row(session, person_x["id"])).low_income_status == "3"


async def test_c2_4_a_source_pushing_an_item_it_does_not_own_gets_403_and_nothing_is_written(
    client, session, sources, person_x
):
    body = [
        {
            "source_event_id": "C1",
            "effective_at": "2024-04-01",
            "id_number": person_x["id_number"],
            "is_disabled": True,
        },
        {
            "source_event_id": "C2",
            "effective_at": "2024-04-01",
            "id_number": person_x["id_number"],
            "low_income_status": "1",
        },
    ]  # 民政's item
    before = await _row(session, person_x["id"])
    r = await client.post("/api/v1/push/person", headers=sources.cl, json=body)
    assert r.status_code == 403 and r.json()["code"] == "push.field_not_owned"
    assert r.json()["errors"] == [
        {
            "path": "body.low_income_status",
            "code": "push.field_not_owned",
            "message": "“低收入状况”由民政维护",
        }
    ]
    after = await _row(session, person_x["id"])
    assert (after.version, after.low_income_status) == (before.version, None)
    assert await _history(session, person_x["id"]) == []
    assert (await session.execute(text("SELECT count(*) FROM push_event"))).scalar() == 0
    audit = (
        await session.execute(
            text("SELECT actor, fields, detail FROM audit_log WHERE action = 'push_refused'")
        )
    ).all()
    assert (
        len(audit) == 1 and audit[0].fields == ["low_income_status"] and audit[0].actor.endswith("cl2-system")
    )
    # Its own item alone goes through (the other side of the rule).
    r = await client.post("/api/v1/push/person", headers=sources.cl, json=body[:1])
    assert r.status_code == 200 and r.json()["counts"]["applied"] == 1


async def test_c2_4_a_township_user_is_not_a_source(client, world, person_x):
    body = [
        {
            "source_event_id": "T1",
            "effective_at": "2024-04-01",
            "id_number": person_x["id_number"],
            "phone": "13900000000",
        }
    ]
    r = await client.post("/api/v1/push/person", headers=world.a, json=body)
    assert r.status_code == 403 and r.json()["code"] == "push.not_a_source"


async def test_c2_5_a_township_edit_of_a_value_the_department_delivered_names_the_department(
    client, world, sources, person_x
):
    pid = person_x["id"]
    push = [
        {
            "source_event_id": "D1",
            "effective_at": "2024-04-01",
            "id_number": person_x["id_number"],
            "is_disabled": True,
        }
    ]
    assert (await client.post("/api/v1/push/person", headers=sources.cl, json=push)).json()["counts"][
        "applied"
    ] == 1
    version = (await client.get(f"/api/v1/ledgers/person/records/{pid}", headers=world.a)).json()["version"]
    r = await client.patch(
        f"/api/v1/ledgers/person/records/{pid}",
        headers=world.a,
        json={"is_disabled": False, "version": version},
    )
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["code"] == "access.field_maintained"
    assert body["errors"] == [
        {"path": "body.is_disabled", "code": "access.field_maintained", "message": "由残联维护"}
    ]
    # The other side: the township's own items save, and so does a department item no feed has
    # delivered yet (民政's marital status, typed by the township as stock data).
    r = await client.patch(
        f"/api/v1/ledgers/person/records/{pid}",
        headers=world.a,
        json={
            "phone": "13900000001",
            "marital_status": "20",
            "is_disabled": True,
            "version": version,
        },
    )
    assert r.status_code == 200, r.text
    # 残联's own people may change what 残联 delivered.
    r = await client.patch(
        f"/api/v1/ledgers/person/records/{pid}",
        headers=world.dept,
        json={"is_disabled": False, "version": version + 1},
    )
    assert r.status_code != 403 or r.json()["code"] != "access.field_maintained"


async def test_create_status_events_and_rejections_per_record(client, session, world, sources):
    new_id = person_id(40)
    body = [
        {
            "source_event_id": "G1",
            "effective_at": "2024-01-01",
            "id_number": new_id,
            "name": "赵六",
            "region_code": VILLAGE_A,
        },
        {"source_event_id": "G2", "effective_at": "2024-03-01", "id_number": new_id, "op": "death"},
        {
            "source_event_id": "G3",
            "effective_at": "2024-01-01",
            "id_number": person_id(41),
            "name": "无区划",
        },
        {"source_event_id": "G4", "effective_at": "昨天", "id_number": new_id, "name": "x"},
        {"effective_at": "2024-01-01", "id_number": new_id, "name": "x"},
    ]
    r = (await client.post("/api/v1/push/person", headers=sources.gaj, json=body)).json()
    assert [x["status"] for x in r["results"]] == [
        "applied",
        "applied",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert [x.get("reason_code") for x in r["results"][2:]] == [
        "push.not_found",
        "push.effective_at_format",
        "push.event_required",
    ]
    rec = (
        await client.get(f"/api/v1/ledgers/person/records/{r['results'][0]['record_id']}", headers=world.a)
    ).json()
    assert rec["name"] == "赵六" and rec["death_date"] == "2024-03-01" and rec["sex"] in ("1", "2")
    moved = [
        {
            "source_event_id": "G5",
            "effective_at": "2024-04-01",
            "id_number": new_id,
            "op": "moved_out",
        }
    ]
    assert (await client.post("/api/v1/push/person", headers=sources.gaj, json=moved)).json()["counts"][
        "applied"
    ] == 1
    assert (
        await client.get(f"/api/v1/ledgers/person/records/{rec['id']}", headers=world.a)
    ).status_code == 404
    # moved_out is the ledger owner's (公安) operation only.
    r = await client.post(
        "/api/v1/push/person", headers=sources.mzj, json=[{**moved[0], "source_event_id": "M"}]
    )
    assert r.status_code == 403
    # Created and moved out in one request: the row exists, out of every read path, with its
    # history; a later upsert of the key is refused as closed.
    other = person_id(42)
    both = [
        {
            "source_event_id": "G6",
            "effective_at": "2024-01-01",
            "id_number": other,
            "name": "钱八",
            "region_code": VILLAGE_A,
        },
        {
            "source_event_id": "G7",
            "effective_at": "2024-02-01",
            "id_number": other,
            "op": "moved_out",
        },
    ]
    r = (await client.post("/api/v1/push/person", headers=sources.gaj, json=both)).json()
    assert [x["status"] for x in r["results"]] == ["applied", "applied"]
    gone = r["results"][0]["record_id"]
    assert gone is not None and r["results"][1]["record_id"] == gone
    row = (
        await session.execute(text("SELECT deleted_at IS NOT NULL FROM lg_person WHERE id = :r"), {"r": gone})
    ).scalar()
    assert row is True
    late = [{"source_event_id": "G8", "effective_at": "2024-03-01", "id_number": other, "name": "钱八"}]
    r = (await client.post("/api/v1/push/person", headers=sources.gaj, json=late)).json()
    assert r["results"][0]["reason_code"] == "push.record_closed"


async def test_csv_and_ndjson_bodies(client, sources, person_x):
    csv_body = (
        "source_event_id,effective_at,id_number,low_income_status\n"
        f"CSV1,2024-04-01,{person_x['id_number']},1\n"
    ).encode()
    r = await client.post(
        "/api/v1/push/person", headers={**sources.mzj, "Content-Type": "text/csv"}, content=csv_body
    )
    assert r.status_code == 200 and r.json()["counts"]["applied"] == 1, r.text
    event = {
        "source_event_id": "ND1",
        "effective_at": "2024-05-01",
        "id_number": person_x["id_number"],
        "low_income_status": "2",
    }
    nd = (json.dumps(event) + "\n").encode()
    r = await client.post(
        "/api/v1/push/person",
        headers={**sources.mzj, "Content-Type": "application/x-ndjson"},
        content=nd,
    )
    assert r.json()["counts"]["applied"] == 1
    r = await client.post(
        "/api/v1/push/person", headers={**sources.mzj, "Content-Type": "text/plain"}, content=b"x"
    )
    assert r.status_code == 415


async def test_the_change_feed_reads_through_the_readers_policy(client, session, world, sources, person_x):
    from app.access.models import Grant

    body = [
        {
            "source_event_id": "F1",
            "effective_at": "2024-04-01",
            "id_number": person_x["id_number"],
            "low_income_status": "1",
            "marital_status": "20",
        },
    ]
    assert (await client.post("/api/v1/push/person", headers=sources.mzj, json=body)).status_code == 200
    feed = (await client.get("/api/v1/push/changes?ledger=person&source=mzj", headers=world.a)).json()
    assert {c["field"] for c in feed["items"]} == {"low_income_status", "marital_status"}
    # The same township user, 低收入状况 hidden by a grant of its own: that row leaves the feed.
    session.add(
        Grant(
            grantee_type="user",
            user_id=world.users["a"].id,
            ledger="person",
            field="low_income_status",
            level="hidden",
            row_scope="own",
            created_by="test",
        )
    )
    await session.flush()
    feed = (await client.get("/api/v1/push/changes?ledger=person", headers=world.a)).json()
    assert [c["field"] for c in feed["items"]] == ["marital_status"]
    assert feed["items"][0]["source_label"] == "民政 / F1"
    # Paging by cursor: nothing after the last row.
    later = (
        await client.get(f"/api/v1/push/changes?ledger=person&since={feed['next_since']}", headers=world.a)
    ).json()
    assert later["items"] == [] and later["next_since"] == feed["next_since"]
