"""Source freshness (C2-7's recorded part), pushes into an extension, XLSX bodies."""

from __future__ import annotations

import io
from datetime import timedelta

import xlsxwriter
from sqlalchemy import text

from app.catalog.loader import get_catalog
from app.push.freshness import refresh_staleness


async def test_a_daily_source_without_a_push_for_48_hours_is_stale_until_it_pushes(
    client, session, world, sources, person_x
):
    listed = {
        s["source"]: s
        for s in (await client.get("/api/v1/push/sources", headers=world.admin)).json()["items"]
    }
    assert listed["mzj"]["frequency"] == "daily" and listed["mzj"]["state"] == "never"
    assert "zfw" not in listed  # declares no push
    body = [
        {
            "source_event_id": "F1",
            "effective_at": "2024-04-01",
            "id_number": person_x["id_number"],
            "low_income_status": "1",
        }
    ]
    assert (await client.post("/api/v1/push/person", headers=sources.mzj, json=body)).status_code == 200
    listed = {
        s["source"]: s
        for s in (await client.get("/api/v1/push/sources", headers=world.admin)).json()["items"]
    }
    assert listed["mzj"]["state"] == "fresh" and listed["mzj"]["last_records"] == 1
    last = (
        await session.execute(text("SELECT last_push_at FROM push_source_state WHERE source = 'mzj'"))
    ).scalar()
    cat = get_catalog()
    # 47 h later: still within daily × 2; 48 h and a minute: stale, and recorded for the alerts job.
    at_47 = {s["source"]: s for s in await refresh_staleness(session, cat, now=last + timedelta(hours=47))}
    assert at_47["mzj"]["state"] == "fresh"
    at_48 = {
        s["source"]: s
        for s in await refresh_staleness(session, cat, now=last + timedelta(hours=48, minutes=1))
    }
    assert at_48["mzj"]["state"] == "stale" and at_48["mzj"]["stale_since"] == last + timedelta(hours=48)
    stored = (
        await session.execute(text("SELECT stale_since FROM push_source_state WHERE source = 'mzj'"))
    ).scalar()
    assert stored == last + timedelta(hours=48)
    # The next push clears it.
    body[0]["source_event_id"] = "F2"
    assert (await client.post("/api/v1/push/person", headers=sources.mzj, json=body)).status_code == 200
    stored = (
        await session.execute(text("SELECT stale_since FROM push_source_state WHERE source = 'mzj'"))
    ).scalar()
    assert stored is None


async def test_an_extension_record_is_created_under_its_parent_and_updated_by_its_key(
    client, world, sources, person_x
):
    cert = person_x["id_number"] + "42"
    body = [
        {
            "source_event_id": "CL1",
            "effective_at": "2024-04-01",
            "certificate_number": cert,
            "parent_key": person_x["id_number"],
            "disability_type": "4",
            "disability_level": "2",
        },
        {
            "source_event_id": "CL2",
            "effective_at": "2024-04-01",
            "certificate_number": person_x["id_number"] + "11",
            "parent_key": "11010519491231002X",
            "disability_type": "1",
            "disability_level": "1",
        },
    ]
    r = (await client.post("/api/v1/push/disability", headers=sources.cl, json=body)).json()
    assert [x["status"] for x in r["results"]] == ["applied", "rejected"]
    assert r["results"][1]["reason_code"] == "push.parent_not_found"
    rid = r["results"][0]["record_id"]
    rec = (await client.get(f"/api/v1/ledgers/disability/records/{rid}", headers=world.a)).json()
    assert rec["parent_id"] == person_x["id"] and rec["disability_type"] == "4"
    assert rec["region_code"] == person_x["region_code"]
    upd = [
        {
            "source_event_id": "CL3",
            "effective_at": "2024-06-01",
            "certificate_number": cert,
            "disability_level": "3",
        }
    ]
    assert (await client.post("/api/v1/push/disability", headers=sources.cl, json=upd)).json()["counts"][
        "applied"
    ] == 1
    # 民政's subsidy items in the same extension are 民政's to push, not 残联's.
    bad = [
        {
            "source_event_id": "CL4",
            "effective_at": "2024-06-01",
            "certificate_number": cert,
            "care_subsidy": True,
        }
    ]
    assert (await client.post("/api/v1/push/disability", headers=sources.cl, json=bad)).status_code == 403
    ok = [
        {
            "source_event_id": "MZ4",
            "effective_at": "2024-06-01",
            "certificate_number": cert,
            "care_subsidy": True,
        }
    ]
    assert (await client.post("/api/v1/push/disability", headers=sources.mzj, json=ok)).json()["counts"][
        "applied"
    ] == 1


async def test_xlsx_body_is_read_through_the_sheet_worker(client, sources, person_x):
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf)
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["source_event_id", "effective_at", "id_number", "low_income_status"])
    ws.write_row(1, 0, ["X1", "2024-04-01", person_x["id_number"], "1"])
    wb.close()
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    r = await client.post(
        "/api/v1/push/person",
        headers={**sources.mzj, "Content-Type": media},
        content=buf.getvalue(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == "applied"
    r = await client.post(
        "/api/v1/push/person", headers={**sources.mzj, "Content-Type": media}, content=b"PK-not"
    )
    assert r.status_code in (413, 422)
