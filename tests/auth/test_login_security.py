"""Item 18: login throttling, account lock and unlock, logout, token revocation, deactivation.

Throttling and revocation state lives in PostgreSQL (several workers serve one deployment); these
tests drive the real app over HTTP and see it through the same database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings
from tests.factories import PASSWORD, auth_headers, make_org_unit, make_user

PROBLEM_JSON = "application/problem+json"
TOKEN = "/api/v1/auth/token"


@pytest.fixture
async def township(session):
    return await make_org_unit(
        session, code="town-500118101", name="胜利路街道", kind="township", region_code="500118101000"
    )


@pytest.fixture
async def platform(session):
    return await make_org_unit(
        session, code="platform", name="区大数据发展局", kind="platform", region_code="500118000000"
    )


@pytest.fixture
async def staff(session, township):
    return await make_user(session, username="zhang.san", org_unit=township, roles=["township_staff"])


@pytest.fixture
async def admin(session, settings, platform):
    user = await make_user(session, username="admin", org_unit=platform, roles=["platform_admin"])
    return auth_headers(settings, user)


def _client(app, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def lax_client(settings, sessionmaker) -> AsyncIterator[httpx.AsyncClient]:
    """A service whose throttle is out of the way, to reach the account lock."""
    from app.main import create_app

    lax = Settings(
        **{**settings.model_dump(), "login_account_attempts": 1000, "login_address_attempts": 1000}
    )
    app = create_app(lax, manage_engine=False)
    app.state.sessionmaker = sessionmaker
    async with _client(app) as c:
        yield c


async def login(client, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(TOKEN, json={"username": username, "password": password})


def problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)
    body = resp.json()
    assert body["code"] == code and body["title"]
    return body


def bearer(resp: httpx.Response) -> dict[str, str]:
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


# --- throttling ---------------------------------------------------------------------------------


async def test_item18_login_is_throttled_per_account_with_retry_after(client, settings, staff):
    limit = settings.login_account_attempts
    for _ in range(limit):
        problem(await login(client, "zhang.san", "wrong-password"), 401, "auth.bad_credentials")
    # Now even the right password waits: the answer is 429 with a delay, not a password check.
    resp = await login(client, "zhang.san")
    problem(resp, 429, "auth.too_many_attempts")
    retry = int(resp.headers["Retry-After"])
    assert 0 < retry <= settings.login_window_seconds
    assert "zhang.san" not in resp.text
    # An unknown username is throttled the same way: a 429 does not tell who exists.
    for _ in range(limit):
        problem(await login(client, "no.such.user", "wrong-password"), 401, "auth.bad_credentials")
    problem(await login(client, "no.such.user", "wrong-password"), 429, "auth.too_many_attempts")


async def test_item18_login_is_throttled_per_client_address(app, settings, session, township):
    for i in range(3):
        await make_user(session, username=f"user{i}", org_unit=township, roles=["township_staff"])
    async with _client(app, "10.1.1.1") as attacker, _client(app, "10.2.2.2") as other:
        for n in range(settings.login_address_attempts):
            resp = await login(attacker, f"spray{n}", "wrong-password")
            problem(resp, 401, "auth.bad_credentials")
        resp = await login(attacker, "user0")
        problem(resp, 429, "auth.too_many_attempts")
        assert int(resp.headers["Retry-After"]) > 0
        # Other addresses and the accounts themselves are not affected.
        assert (await login(other, "user0")).status_code == 200


# --- lock and unlock ----------------------------------------------------------------------------


async def test_item18_account_locks_after_repeated_failures_and_admin_unlocks(
    lax_client, settings, staff, admin
):
    for _ in range(settings.login_lock_after):
        problem(await login(lax_client, "zhang.san", "wrong-password"), 401, "auth.bad_credentials")
    # Locked: refused even with the right password; a wrong one still learns nothing.
    problem(await login(lax_client, "zhang.san"), 401, "auth.account_locked")
    problem(await login(lax_client, "zhang.san", "wrong-password"), 401, "auth.bad_credentials")
    listed = (await lax_client.get("/api/v1/users", headers=admin)).json()
    assert next(u for u in listed if u["username"] == "zhang.san")["locked"] is True

    # Only an administrator unlocks.
    own = bearer(await login(lax_client, "admin"))
    staff_token = auth_headers(settings, staff)
    # (A lock stops password guessing; a session opened before it goes on, without admin rights.)
    problem(
        await lax_client.post(f"/api/v1/users/{staff.id}/unlock", headers=staff_token),
        403,
        "auth.role_required",
    )
    resp = await lax_client.post(f"/api/v1/users/{staff.id}/unlock", headers=own)
    assert resp.status_code == 200 and resp.json()["locked"] is False
    assert (await login(lax_client, "zhang.san")).status_code == 200


async def test_item18_unlock_is_admin_only(client, session, settings, township, staff):
    other = await make_user(session, username="li.si", org_unit=township, roles=["township_admin"])
    resp = await client.post(f"/api/v1/users/{staff.id}/unlock", headers=auth_headers(settings, other))
    problem(resp, 403, "auth.role_required")


# --- logout and revocation ----------------------------------------------------------------------


async def test_item18_logout_revokes_the_presented_token(client, staff):
    first = bearer(await login(client, "zhang.san"))
    second = bearer(await login(client, "zhang.san"))
    assert (await client.get("/api/v1/auth/me", headers=first)).status_code == 200
    resp = await client.post("/api/v1/auth/logout", headers=first)
    assert resp.status_code == 204
    problem(await client.get("/api/v1/auth/me", headers=first), 401, "auth.invalid_token")
    gql = await client.post("/graphql", json={"query": "{ me { name } }"}, headers=first)
    assert gql.status_code == 401
    # Only that token: the user's other session goes on.
    assert (await client.get("/api/v1/auth/me", headers=second)).status_code == 200


async def test_item18_password_change_revokes_every_token_of_the_user(client, staff):
    old = bearer(await login(client, "zhang.san"))
    other = bearer(await login(client, "zhang.san"))
    wrong = await client.post(
        "/api/v1/auth/password",
        headers=old,
        json={"current_password": "wrong-password", "new_password": "n3w-passw0rd!"},
    )
    problem(wrong, 422, "validation.failed")
    assert (await client.get("/api/v1/auth/me", headers=old)).status_code == 200
    resp = await client.post(
        "/api/v1/auth/password",
        headers=old,
        json={"current_password": PASSWORD, "new_password": "n3w-passw0rd!"},
    )
    assert resp.status_code == 204, resp.text
    problem(await client.get("/api/v1/auth/me", headers=old), 401, "auth.invalid_token")
    problem(await client.get("/api/v1/auth/me", headers=other), 401, "auth.invalid_token")
    problem(await login(client, "zhang.san"), 401, "auth.bad_credentials")
    fresh = bearer(await login(client, "zhang.san", "n3w-passw0rd!"))
    assert (await client.get("/api/v1/auth/me", headers=fresh)).status_code == 200


# --- deactivation -------------------------------------------------------------------------------


async def test_item18_deactivate_revokes_tokens_and_refuses_login(client, settings, staff, admin):
    token = bearer(await login(client, "zhang.san"))
    problem(
        await client.post(f"/api/v1/users/{staff.id}/deactivate", headers=token), 403, "auth.role_required"
    )
    resp = await client.post(f"/api/v1/users/{staff.id}/deactivate", headers=admin)
    assert resp.status_code == 200 and resp.json()["active"] is False
    assert (await client.get("/api/v1/auth/me", headers=token)).status_code == 401
    problem(await login(client, "zhang.san"), 401, "auth.account_disabled")

    resp = await client.post(f"/api/v1/users/{staff.id}/activate", headers=admin)
    assert resp.status_code == 200 and resp.json()["active"] is True
    # Reactivation does not revive tokens issued before the deactivation.
    problem(await client.get("/api/v1/auth/me", headers=token), 401, "auth.invalid_token")
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(await login(client, "zhang.san")))
    ).status_code == 200


async def test_item18_user_admin_edge_cases(client, session, settings, platform, admin):
    me = await make_user(session, username="root2", org_unit=platform, roles=["platform_admin"])
    mine = auth_headers(settings, me)
    problem(
        await client.post(f"/api/v1/users/{me.id}/deactivate", headers=mine),
        409,
        "user.cannot_deactivate_self",
    )
    problem(await client.post("/api/v1/users/999999999/deactivate", headers=admin), 404, "record.not_found")


def test_item18_cli_unlocks_when_no_administrator_can_log_in(database_url, monkeypatch):
    """The last platform administrator locked out is unlocked from the server's shell."""
    import asyncio
    import os

    import psycopg
    from alembic import command
    from alembic.config import Config
    from psycopg import sql
    from sqlalchemy import func, select
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from typer.testing import CliRunner

    from app.cli import main
    from app.config import get_settings
    from app.db.engine import libpq_conninfo
    from app.org.models import User
    from tests.conftest import ROOT

    name = f"onetable_unlock_{os.getpid()}"
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    server = libpq_conninfo(
        make_url(database_url).set(database="postgres").render_as_string(hide_password=False)
    )
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.attributes["url"] = url
        command.upgrade(cfg, "head")

        async def db(work):
            engine = create_async_engine(url)
            try:
                async with async_sessionmaker(engine)() as s:
                    result = await work(s)
                    await s.commit()
                    return result
            finally:
                await engine.dispose()

        async def seed(s):
            unit = await make_org_unit(
                s, code="platform", name="平台", kind="platform", region_code="500118000000"
            )
            user = await make_user(s, username="root", org_unit=unit, roles=["platform_admin"])
            user.locked_at, user.failed_logins = func.now(), 10

        asyncio.run(db(seed))
        monkeypatch.setenv("ONETABLE_DATABASE_URL", url)
        get_settings.cache_clear()
        try:
            run = CliRunner().invoke(main, ["user", "unlock", "root"], env={"NO_COLOR": "1"})
            missing = CliRunner().invoke(main, ["user", "unlock", "nobody"], env={"NO_COLOR": "1"})
        finally:
            get_settings.cache_clear()
        assert run.exit_code == 0, run.output
        assert missing.exit_code == 1

        async def state(s):
            return (await s.execute(select(User.locked_at, User.failed_logins))).one()

        assert tuple(asyncio.run(db(state))) == (None, 0)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(drop)
