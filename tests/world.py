"""Shared fixture `world` (a pytest plugin): two townships, A (500118101) and B (500118102), their
admins, a department."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.access.models import Grant
from tests.factories import auth_headers, make_org_unit, make_user

A, B = "500118101", "500118102"
VILLAGE_A, VILLAGE_B = A + "201", B + "201"


@dataclass
class World:
    a: dict
    b: dict
    dept: dict
    admin: dict
    users: dict


@pytest.fixture
async def world(session, settings) -> World:
    units = {
        "a": await make_org_unit(
            session, code=A + "000", name="临江镇", kind="township", region_code=A + "000"
        ),
        "b": await make_org_unit(
            session, code=B + "000", name="何埂镇", kind="township", region_code=B + "000"
        ),
        "cl": await make_org_unit(
            session,
            code="dept:cl",
            name="区残联",
            kind="department",
            region_code="500118000000",
            department_code="cl",
        ),
        "platform": await make_org_unit(
            session, code="platform", name="区大数据局", kind="platform", region_code="500118000000"
        ),
    }
    users = {
        "a": await make_user(session, username="ta", org_unit=units["a"], roles=["township_admin"]),
        "b": await make_user(session, username="tb", org_unit=units["b"], roles=["township_admin"]),
        "cl": await make_user(session, username="cl", org_unit=units["cl"], roles=["dept_admin"]),
        "admin": await make_user(
            session, username="admin", org_unit=units["platform"], roles=["platform_admin"]
        ),
    }
    # Townships keep their own ledgers: write on everything, inside their own subtree.
    session.add(
        Grant(
            grantee_type="role",
            role="township_admin",
            ledger="*",
            field="*",
            level="write",
            row_scope="own",
            created_by="test",
        )
    )
    await session.flush()
    return World(
        a=auth_headers(settings, users["a"]),
        b=auth_headers(settings, users["b"]),
        dept=auth_headers(settings, users["cl"]),
        admin=auth_headers(settings, users["admin"]),
        users=users,
    )
