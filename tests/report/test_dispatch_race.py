"""Two departments' clerks (or one double click) dispatching the same template and period at once: the
database decides (unique constraint + ON CONFLICT), so every request answers 200 and each township
gets exactly one task; none answers 500.

Real concurrency needs committed data seen by separate connections, so this test commits its own small
world (codes no other test uses) and deletes it afterwards, checking that every table is back to its
row count from before."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.access.models import Grant
from app.org.models import OrgUnit, User
from app.report.models import ReportTask, ReportTemplate, ReportTransition
from tests.factories import auth_headers, make_org_unit, make_user

T = "/api/v1/report-templates"
DISTRICT = "500199"  # not a district any other test uses
TEMPLATE = {
    "code": "race",
    "name": "并发下派",
    "kind": "list",
    "ledger": "person",
    "columns": [
        {"kind": "field", "code": "name", "path": "name"},
        {"kind": "gap", "code": "visited", "label": "是否走访", "type": "boolean"},
    ],
}


async def _counts(conn) -> dict[str, int]:
    names = (
        (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")))
        .scalars()
        .all()
    )
    return {n: (await conn.execute(text(f'SELECT count(*) FROM "{n}"'))).scalar_one() for n in names}


@pytest.fixture
async def committed(database_url, settings):
    eng = create_async_engine(database_url, poolclass=NullPool)
    maker = async_sessionmaker(eng, expire_on_commit=False, autoflush=False)
    async with eng.connect() as conn:
        before = await _counts(conn)
    async with maker() as s:
        units = [
            await make_org_unit(
                s,
                code=f"{DISTRICT}{n}000",
                name=f"并发镇{n}",
                kind="township",
                region_code=f"{DISTRICT}{n}000",
            )
            for n in ("101", "102", "103")
        ]
        dept = await make_org_unit(
            s,
            code="dept:race",
            name="并发局",
            kind="department",
            region_code=f"{DISTRICT}000000",
            department_code="race",
        )
        user = await make_user(s, username="race_dept", org_unit=dept, roles=["dept_admin"])
        platform = await make_org_unit(
            s, code="platform:race", name="并发大数据局", kind="platform", region_code=f"{DISTRICT}000000"
        )
        admin = await make_user(s, username="race_admin", org_unit=platform, roles=["platform_admin"])
        s.add(
            Grant(
                grantee_type="org_unit",
                org_unit_id=dept.id,
                ledger="person",
                field="*",
                level="read",
                row_scope="own",
                created_by="test",
            )
        )
        await s.commit()
    try:
        yield (
            maker,
            auth_headers(settings, user),
            auth_headers(settings, admin),
            [u.region_code for u in units],
        )
    finally:
        async with maker() as s:
            tpl_ids = select(ReportTemplate.id).where(ReportTemplate.department_code == "race")
            from app.report.models import ReportTemplateVersion as V

            versions = select(V.id).where(V.template_id.in_(tpl_ids))
            await s.execute(delete(ReportTransition).where(ReportTransition.version_id.in_(versions)))
            await s.execute(delete(ReportTask).where(ReportTask.version_id.in_(versions)))
            await s.execute(delete(ReportTemplate).where(ReportTemplate.department_code == "race"))
            await s.execute(delete(Grant).where(Grant.org_unit_id == dept.id))
            await s.execute(delete(User).where(User.id.in_([user.id, admin.id])))
            await s.execute(
                delete(OrgUnit).where(OrgUnit.id.in_([dept.id, platform.id, *(u.id for u in units)]))
            )
            await s.commit()
        async with eng.connect() as conn:
            after = await _counts(conn)
        await eng.dispose()
        assert after == before, "the race test left rows behind"


async def test_concurrent_dispatches_of_one_period_give_one_task_per_township_and_no_server_error(
    settings, committed
):
    from app.main import create_app

    maker, dept, admin, townships = committed
    app = create_app(settings, manage_engine=False)
    app.state.sessionmaker = maker  # every request its own session on its own connection, committed
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post(T, json=TEMPLATE, headers=dept)
        assert r.status_code == 201, r.text
        tid = r.json()["id"]
        r = await client.post(f"{T}/{tid}/submit", headers=dept)
        assert r.status_code == 200 and r.json()["state"] == "submitted", r.text
        r = await client.post(f"{T}/{tid}/approve", headers=admin)
        assert r.status_code == 200 and r.json()["state"] == "approved", r.text
        # Four at once, two of them naming the townships in another order.
        bodies = [
            {"period": "2026-11"},
            {"period": "2026-11"},
            {"period": "2026-11", "townships": townships[::-1]},
            {"period": "2026-11", "townships": townships},
        ]
        got = await asyncio.gather(
            *[client.post(f"{T}/{tid}/dispatch", json=b, headers=dept) for b in bodies]
        )
    statuses = [g.status_code for g in got]
    assert all(s in (200, 409) for s in statuses), [g.text for g in got]
    assert 200 in statuses
    ok = [g.json() for g in got if g.status_code == 200]
    assert sum(o["created"] for o in ok) == len(townships)  # each township created by exactly one of them
    for o in ok:
        assert o["created"] + o["existing"] == len(townships)
    for g in got:
        if g.status_code == 409:
            assert g.headers["content-type"].startswith("application/problem+json")
    async with maker() as s:
        tasks = (
            await s.execute(
                select(ReportTask.township_code, func.count())
                .group_by(ReportTask.township_code)
                .where(ReportTask.township_code.in_(townships))
            )
        ).all()
        assert sorted(tasks) == [(t, 1) for t in sorted(townships)]
        dispatched = await s.scalar(
            select(func.count())
            .select_from(ReportTransition)
            .where(
                ReportTransition.to_state == "dispatched",
                ReportTransition.task_id.in_(
                    select(ReportTask.id).where(ReportTask.township_code.in_(townships))
                ),
            )
        )
        assert dispatched == len(townships)  # one history entry per task, not one per request
