"""The commit uses the dry run's plan only when nothing it depends on changed since (app/imports/jobs.py
reuse_plan): a record edited or created in between makes the commit plan again under its locks."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import insert, update

from app.db.ledger_tables import tables
from app.imports import jobs
from tests.imports.test_jobs import ADDR_A, VILLAGE, area, person, pid, sheet, upload  # noqa: F401


async def dry_run_and_approve(client, world, content: bytes) -> tuple[int, jobs._DryRun]:
    b = await upload(client, world.a, content, "2026年10月临江镇人口台账.csv")
    r = await client.post(f"/api/v1/imports/{b['id']}/dry-run", headers=world.a)
    assert r.status_code == 200, r.text
    kept = jobs.DRY_RUNS[b["id"]]
    assert (await client.post(f"/api/v1/imports/{b['id']}/submit", headers=world.a)).status_code == 200
    assert (await client.post(f"/api/v1/imports/{b['id']}/approve", headers=world.admin)).status_code == 200
    return b["id"], kept


async def commit(client, world, batch_id: int) -> dict[str, Any]:
    r = await client.post(f"/api/v1/imports/{batch_id}/commit", headers=world.admin)
    assert r.status_code == 200, r.text
    assert batch_id not in jobs.DRY_RUNS  # taken by the commit, whether used or not
    return r.json()


def row(kept: jobs._DryRun, n: int) -> Any:
    """The plan of the sheet's n-th data row."""
    return kept.plan.rows[n - 1]


async def test_unchanged_ledger_commits_the_dry_run_plan(client, session, area):  # noqa: F811
    world = area
    t = tables().ledgers["person"]
    await session.execute(
        insert(t).values(
            region_code=VILLAGE, name="老李", id_number=pid(60), sex="1", birth_date=date(1960, 1, 7)
        )
    )
    await session.flush()
    content = sheet(
        [
            [1, "老李", pid(60), "男", "13800000060", ADDR_A, None, None],
            [2, "新人丙", pid(61), "男", "13800000061", ADDR_A, None, None],
        ]
    )
    bid, kept = await dry_run_and_approve(client, world, content)
    assert (row(kept, 1).outcome, row(kept, 2).outcome) == ("update", "create")
    out = await commit(client, world, bid)
    assert (out["counts"]["created"], out["counts"]["updated"]) == (1, 1)
    created = await person(session, pid(61))
    # the commit wrote the kept plan's rows (it gave the new record its id there)
    assert row(kept, 2).record_id == created["id"]
    assert (await person(session, pid(60)))["phone"] == "13800000060"


async def test_record_edited_since_the_dry_run_is_planned_again(client, session, area):  # noqa: F811
    world = area
    t = tables().ledgers["person"]
    await session.execute(
        insert(t).values(
            region_code=VILLAGE, name="老赵", id_number=pid(62), sex="1", birth_date=date(1960, 1, 9)
        )
    )
    await session.flush()
    content = sheet(
        [
            [1, "老赵", pid(62), "男", "13800000062", ADDR_A, None, None],
            [2, "新人丁", pid(63), "男", None, ADDR_A, None, None],
        ]
    )
    bid, kept = await dry_run_and_approve(client, world, content)
    assert row(kept, 1).outcome == "update"
    # a department sets the phone between dry run and commit: its value must survive the import
    old = await person(session, pid(62))
    await session.execute(
        update(t)
        .where(t.c.id == old["id"])
        .values(
            phone="13999999999",
            residence_address=ADDR_A,
            provenance={"phone": {"source": "department:mzj"}},
            version=t.c.version + 1,
        )
    )
    # and someone enters the person the sheet would create
    await session.execute(
        insert(t).values(
            region_code=VILLAGE,
            name="新人丁",
            id_number=pid(63),
            sex="1",
            birth_date=date(1960, 1, 10),
            residence_address=ADDR_A,
        )
    )
    await session.flush()
    out = await commit(client, world, bid)
    c = out["counts"]
    assert (c["created"], c["unchanged"]) == (0, 2)
    assert (await person(session, pid(62)))["phone"] == "13999999999"
    assert row(kept, 2).record_id is None  # the dry run's plan was not the one written
