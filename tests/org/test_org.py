"""Org tree API and services: regions, org units, users, service accounts — against the real DB."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from app.errors import Problem
from app.org import service
from app.org.models import ServiceAccount, User
from tests.factories import (
    api_key_headers,
    auth_headers,
    make_org_unit,
    make_service_account,
    make_user,
)

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
async def regions(session):
    for code, name in [
        ("500000000000", "重庆市"),
        ("500100000000", "市辖区"),
        ("500118000000", "永川区"),
        ("500118101000", "胜利路街道"),
        ("500118102000", "中山路街道"),
        ("500118101001", "萱花社区"),
        ("500118101002", "红旗社区"),
    ]:
        await service.upsert_region(session, code=code, name=name)


@pytest.fixture
async def platform(session):
    return await make_org_unit(
        session, code="platform", name="区大数据发展局", kind="platform", region_code="500118000000"
    )


@pytest.fixture
async def township(session):
    return await make_org_unit(
        session,
        code="town-500118101",
        name="胜利路街道办事处",
        kind="township",
        region_code="500118101000",
    )


@pytest.fixture
async def admin(session, settings, platform):
    user = await make_user(session, username="admin", org_unit=platform, roles=["platform_admin"])
    return auth_headers(settings, user)


@pytest.fixture
async def staff(session, settings, township):
    user = await make_user(session, username="town.staff", org_unit=township, roles=["township_admin"])
    return auth_headers(settings, user)


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)
    body = resp.json()
    assert body["code"] == code
    return body


def new_user(**over) -> dict:
    return {
        "username": "wang.wu",
        "password": "a-long-enough-password",
        "display_name": "王五",
        "org_unit_code": "town-500118101",
        "roles": ["township_staff"],
        **over,
    }


# --- regions ------------------------------------------------------------------------------------


async def test_region_tree_is_readable_by_any_principal(client, regions, staff):
    top = await client.get("/api/v1/regions", headers=staff)
    assert top.status_code == 200, top.text
    assert top.json() == [{"code": "500000000000", "name": "重庆市", "level": 1, "parent_code": None}]

    towns = await client.get("/api/v1/regions", params={"parent": "500118000000"}, headers=staff)
    assert [r["code"] for r in towns.json()] == ["500118101000", "500118102000"]
    assert towns.json()[0] == {
        "code": "500118101000",
        "name": "胜利路街道",
        "level": 4,
        "parent_code": "500118000000",
    }

    villages = await client.get("/api/v1/regions", params={"parent": "500118101000"}, headers=staff)
    assert [(r["code"], r["level"]) for r in villages.json()] == [
        ("500118101001", 5),
        ("500118101002", 5),
    ]

    leaf = await client.get("/api/v1/regions", params={"parent": "500118101001"}, headers=staff)
    assert leaf.status_code == 200 and leaf.json() == []


async def test_region_tree_edge_cases(client, regions, staff):
    assert_problem(await client.get("/api/v1/regions"), 401, "auth.required")
    resp = await client.get("/api/v1/regions", params={"parent": "500118999000"}, headers=staff)
    assert_problem(resp, 404, "record.not_found")
    resp = await client.get("/api/v1/regions", params={"parent": "5001'--"}, headers=staff)
    assert_problem(resp, 422, "validation.failed")


async def test_roots_include_regions_whose_parent_is_not_stored(session, client, staff):
    await service.upsert_region(session, code="500118000000", name="永川区")  # no city, no province
    resp = await client.get("/api/v1/regions", headers=staff)
    assert resp.json() == [
        {"code": "500118000000", "name": "永川区", "level": 3, "parent_code": "500100000000"}
    ]


async def test_put_region_upserts(client, admin, staff):
    resp = await client.put("/api/v1/regions/500118101001001", json={"name": "一号网格"}, headers=admin)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "code": "500118101001001",
        "name": "一号网格",
        "level": 6,
        "parent_code": "500118101001",
    }
    resp = await client.put("/api/v1/regions/500118101001001", json={"name": "第一网格"}, headers=admin)
    assert resp.json()["name"] == "第一网格"
    assert_problem(
        await client.put("/api/v1/regions/500118101001002", json={"name": "x"}, headers=staff),
        403,
        "auth.role_required",
    )


# --- org units ----------------------------------------------------------------------------------


async def test_create_and_list_org_units(client, regions, admin, staff, platform, township):
    body = {
        "code": "dept-mzj",
        "name": "区民政局",
        "kind": "department",
        "region_code": "500118000000",
        "department_code": "mzj",
    }
    resp = await client.post("/api/v1/org-units", json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    assert resp.json() == {**body, "id": resp.json()["id"]}

    resp = await client.get("/api/v1/org-units", params={"kind": "department"}, headers=staff)
    assert [u["code"] for u in resp.json()] == ["dept-mzj"]
    resp = await client.get("/api/v1/org-units", params={"region": "500118101"}, headers=staff)
    assert [u["code"] for u in resp.json()] == ["town-500118101"]
    resp = await client.get("/api/v1/org-units", headers=staff)
    assert {u["code"] for u in resp.json()} == {"dept-mzj", "platform", "town-500118101"}

    dup = await client.post("/api/v1/org-units", json=body, headers=admin)
    assert_problem(dup, 409, "org_unit.exists")
    assert "dept-mzj" not in dup.text


async def test_create_org_unit_validation(client, regions, admin, staff):
    resp = await client.post(
        "/api/v1/org-units",
        json={
            "code": "dept-x",
            "name": "某局",
            "kind": "department",
            "region_code": "500118999000",
        },
        headers=admin,
    )
    body = assert_problem(resp, 422, "validation.failed")
    assert {(e["path"], e["code"]) for e in body["errors"]} == {
        ("body.department_code", "org_unit.department_required"),
        ("body.region_code", "region.unknown"),
    }
    resp = await client.post(
        "/api/v1/org-units",
        json={
            "code": "town-x",
            "name": "某镇",
            "kind": "township",
            "region_code": "500118102000",
            "department_code": "nope",
        },
        headers=admin,
    )
    body = assert_problem(resp, 422, "validation.failed")
    assert [e["path"] for e in body["errors"]] == ["body.department_code"]
    resp = await client.post(
        "/api/v1/org-units",
        json={"code": "town-y", "name": "某镇", "kind": "township", "region_code": "500118102000"},
        headers=staff,
    )
    assert_problem(resp, 403, "auth.role_required")


# --- users --------------------------------------------------------------------------------------


async def test_admin_creates_user_who_can_log_in(client, admin, township):
    resp = await client.post("/api/v1/users", json=new_user(), headers=admin)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["username"] == "wang.wu" and body["display_name"] == "王五"
    assert body["roles"] == ["township_staff"] and body["active"] is True
    assert body["org_unit"]["id"] == township.id and body["created_at"]
    assert "password" not in resp.text and "hash" not in resp.text and "argon2" not in resp.text

    login = await client.post(
        "/api/v1/auth/token", json={"username": "wang.wu", "password": "a-long-enough-password"}
    )
    assert login.status_code == 200, login.text


async def test_non_admin_cannot_create_users(client, session, settings, township, staff):
    assert_problem(
        await client.post("/api/v1/users", json=new_user(), headers=staff),
        403,
        "auth.role_required",
    )
    _, key = await make_service_account(session, township)
    resp = await client.post("/api/v1/users", json=new_user(), headers=api_key_headers(key))
    assert_problem(resp, 403, "auth.role_required")
    assert_problem(await client.post("/api/v1/users", json=new_user()), 401, "auth.required")


async def test_duplicate_username_is_409_without_echo(client, session, admin, township):
    await make_user(session, username="dup.name.123", org_unit=township, roles=["township_staff"])
    resp = await client.post("/api/v1/users", json=new_user(username="dup.name.123"), headers=admin)
    body = assert_problem(resp, 409, "user.exists")
    assert "dup.name.123" not in resp.text
    assert body["title"] == "用户名已被使用"
    # The request's transaction survived the violation: the next write in the same test works.
    resp = await client.post("/api/v1/users", json=new_user(username="fresh.name"), headers=admin)
    assert resp.status_code == 201, resp.text


async def test_user_validation_paths(client, admin, township):
    resp = await client.post(
        "/api/v1/users",
        json=new_user(org_unit_code="no-such-unit", roles=["township_staff", "wizard"]),
        headers=admin,
    )
    body = assert_problem(resp, 422, "validation.failed")
    assert {(e["path"], e["code"]) for e in body["errors"]} == {
        ("body.org_unit_code", "org_unit.unknown"),
        ("body.roles.1", "user.unknown_role"),
    }
    assert "no-such-unit" not in resp.text and "wizard" not in resp.text

    resp = await client.post("/api/v1/users", json=new_user(roles=["platform_admin"]), headers=admin)
    body = assert_problem(resp, 422, "validation.failed")
    assert [(e["path"], e["code"]) for e in body["errors"]] == [
        ("body.roles.0", "user.role_org_kind_mismatch")
    ]

    resp = await client.post(
        "/api/v1/users", json=new_user(password="pw7Qz", username="bad name"), headers=admin
    )
    body = assert_problem(resp, 422, "validation.failed")
    assert {e["path"] for e in body["errors"]} == {"body.password", "body.username"}
    assert "pw7Qz" not in resp.text and "bad name" not in resp.text


async def test_list_users_is_admin_only_and_has_no_hashes(client, session, admin, staff, township):
    await make_user(
        session, username="village.one", org_unit=township, roles=["township_staff"], active=False
    )
    resp = await client.get("/api/v1/users", headers=admin)
    assert resp.status_code == 200, resp.text
    assert {u["username"] for u in resp.json()} == {"admin", "town.staff", "village.one"}
    assert "hash" not in resp.text and "$argon2" not in resp.text
    resp = await client.get(
        "/api/v1/users", params={"org_unit": "town-500118101", "active": "true"}, headers=admin
    )
    assert [u["username"] for u in resp.json()] == ["town.staff"]
    resp = await client.get("/api/v1/users", params={"limit": 1, "offset": 1}, headers=admin)
    assert len(resp.json()) == 1
    assert_problem(await client.get("/api/v1/users", headers=staff), 403, "auth.role_required")


async def test_create_user_service_hashes_password(session, township):
    user = await service.create_user(
        session,
        username="svc.made",
        password="another-long-password",
        display_name="服务创建",
        org_unit_code="town-500118101",
        roles=["township_staff", "township_staff"],
    )
    assert user.id and user.roles == ["township_staff"]
    assert user.password_hash.startswith("$argon2") and "another-long-password" not in user.password_hash
    with pytest.raises(Problem) as exc:
        await service.create_user(
            session,
            username="svc.made",
            password="another-long-password",
            display_name="x",
            org_unit_code="town-500118101",
            roles=["township_staff"],
        )
    assert exc.value.status == 409 and exc.value.code == "user.exists"
    # The savepoint kept the session usable.
    assert await session.scalar(select(User.id).where(User.username == "svc.made")) == user.id


# --- service accounts ---------------------------------------------------------------------------


async def test_service_account_key_is_shown_once(client, session, admin, township):
    resp = await client.post(
        "/api/v1/service-accounts",
        json={"name": "残联业务系统", "org_unit_code": "town-500118101"},
        headers=admin,
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["cache-control"] == "no-store"
    created = resp.json()
    key = created["api_key"]
    _, prefix, secret = key.split("_", 2)
    assert key.startswith("ot_") and created["key_prefix"] == prefix
    assert created["org_unit"]["code"] == "town-500118101" and created["active"] is True

    # Stored only hashed.
    account = await session.scalar(
        select(ServiceAccount)
        .where(ServiceAccount.id == created["id"])
        .execution_options(populate_existing=True)
    )
    assert account.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in account.key_hash

    # The key works …
    me = await client.get("/api/v1/auth/me", headers=api_key_headers(key))
    assert me.status_code == 200 and me.json()["name"] == "残联业务系统"

    # … and is never returned again, nor its hash.
    listing = await client.get("/api/v1/service-accounts", headers=admin)
    assert listing.status_code == 200
    assert [a["name"] for a in listing.json()] == ["残联业务系统"]
    assert "api_key" not in listing.json()[0]
    for text in (listing.text, me.text):
        assert key not in text and secret not in text and account.key_hash not in text


async def test_deactivate_service_account(client, session, admin, staff, township):
    account, key = await make_service_account(session, township)
    assert_problem(
        await client.delete(f"/api/v1/service-accounts/{account.id}", headers=staff),
        403,
        "auth.role_required",
    )
    resp = await client.delete(f"/api/v1/service-accounts/{account.id}", headers=admin)
    assert resp.status_code == 204, resp.text
    assert_problem(
        await client.get("/api/v1/auth/me", headers=api_key_headers(key)),
        401,
        "auth.account_disabled",
    )
    listing = await client.get("/api/v1/service-accounts", params={"active": "false"}, headers=admin)
    assert [a["id"] for a in listing.json()] == [account.id]
    assert_problem(
        await client.delete("/api/v1/service-accounts/999999999", headers=admin),
        404,
        "record.not_found",
    )


async def test_service_account_name_is_unique(client, session, admin, township):
    await make_service_account(session, township, name="公安人口系统")
    resp = await client.post(
        "/api/v1/service-accounts",
        json={"name": "公安人口系统", "org_unit_code": "town-500118101"},
        headers=admin,
    )
    assert_problem(resp, 409, "service_account.exists")
    assert "公安人口系统" not in resp.text
    resp = await client.post(
        "/api/v1/service-accounts", json={"name": "x", "org_unit_code": "no-such"}, headers=admin
    )
    body = assert_problem(resp, 422, "validation.failed")
    assert body["errors"][0]["path"] == "body.org_unit_code"


def test_parent_region_code():
    assert service.parent_region_code("500000000000") is None
    assert service.parent_region_code("500100000000") == "500000000000"
    assert service.parent_region_code("500118000000") == "500100000000"
    assert service.parent_region_code("500118101000") == "500118000000"
    assert service.parent_region_code("500118101001") == "500118101000"
    assert service.parent_region_code("500118101001001") == "500118101001"
