"""Login, tokens, API keys and the current principal, against the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from app.auth.deps import authenticate
from app.auth.tokens import decode_token, issue_token
from app.errors import Problem
from tests.factories import (
    PASSWORD,
    api_key_headers,
    auth_headers,
    make_org_unit,
    make_service_account,
    make_user,
)

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
async def township(session):
    return await make_org_unit(
        session,
        code="town-500118101",
        name="胜利路街道",
        kind="township",
        region_code="500118101000",
    )


@pytest.fixture
async def staff(session, township):
    return await make_user(session, username="zhang.san", org_unit=township, roles=["township_staff"])


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)
    body = resp.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(code)
    assert body["title"]  # Chinese, for people
    return body


# --- login --------------------------------------------------------------------------------------


async def test_login_json_returns_bearer_token(client, settings, staff):
    resp = await client.post("/api/v1/auth/token", json={"username": "zhang.san", "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.token_ttl_minutes * 60
    assert resp.headers["cache-control"] == "no-store"
    assert decode_token(settings, body["access_token"]) == staff.id


async def test_login_oauth2_form_and_token_works_on_me(client, staff, township):
    resp = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "zhang.san", "password": PASSWORD},
    )
    assert resp.status_code == 200, resp.text
    token = resp.json()["access_token"]

    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json() == {
        "kind": "user",
        "id": staff.id,
        "name": "zhang.san",
        "org_unit": {
            "id": township.id,
            "code": "town-500118101",
            "name": "胜利路街道",
            "kind": "township",
            "region_code": "500118101000",
        },
        "roles": ["township_staff"],
        "department_code": None,
    }


async def test_wrong_password_and_unknown_user_look_the_same(client, staff):
    wrong = await client.post(
        "/api/v1/auth/token", json={"username": "zhang.san", "password": "not-the-password"}
    )
    unknown = await client.post("/api/v1/auth/token", json={"username": "li.si", "password": PASSWORD})
    body = assert_problem(wrong, 401, "auth.bad_credentials")
    assert body["title"] == "用户名或密码错误"
    assert assert_problem(unknown, 401, "auth.bad_credentials") == body
    assert "zhang.san" not in wrong.text and "li.si" not in unknown.text


async def test_login_form_wrong_password(client, staff):
    resp = await client.post("/api/v1/auth/token", data={"username": "zhang.san", "password": "nope-nope"})
    assert_problem(resp, 401, "auth.bad_credentials")


async def test_login_missing_field_is_validation_problem_without_echo(client):
    resp = await client.post("/api/v1/auth/token", json={"username": "secret-name-xyz"})
    body = assert_problem(resp, 422, "validation.failed")
    assert [e["path"] for e in body["errors"]] == ["body.password"]
    assert "secret-name-xyz" not in resp.text


async def test_login_rejects_other_grant_types_and_media_types(client):
    resp = await client.post("/api/v1/auth/token", data={"grant_type": "client_credentials", "username": "a"})
    assert_problem(resp, 422, "validation.failed")
    resp = await client.post(
        "/api/v1/auth/token", content=b"username=a", headers={"content-type": "text/plain"}
    )
    assert_problem(resp, 415, "request.unsupported_media_type")
    resp = await client.post(
        "/api/v1/auth/token", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert_problem(resp, 400, "request.bad")


async def test_inactive_user_cannot_log_in_or_use_a_token(client, settings, session, township):
    user = await make_user(
        session, username="gone", org_unit=township, roles=["township_staff"], active=False
    )
    resp = await client.post("/api/v1/auth/token", json={"username": "gone", "password": PASSWORD})
    assert_problem(resp, 401, "auth.account_disabled")
    # With the wrong password nothing is revealed about the account.
    resp = await client.post("/api/v1/auth/token", json={"username": "gone", "password": "wrong-password"})
    assert_problem(resp, 401, "auth.bad_credentials")
    # A token issued while active stops working once the account is deactivated.
    resp = await client.get("/api/v1/auth/me", headers=auth_headers(settings, user))
    assert_problem(resp, 401, "auth.account_disabled")


# --- tokens -------------------------------------------------------------------------------------


async def test_missing_credentials(client):
    resp = await client.get("/api/v1/auth/me")
    assert_problem(resp, 401, "auth.required")
    assert resp.headers["www-authenticate"] == "Bearer"
    resp = await client.get("/api/v1/auth/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(resp, 401, "auth.required")


def _forge(settings, **claims) -> str:
    now = datetime.now(UTC)
    base = {"sub": "user:1", "iat": now, "exp": now + timedelta(minutes=5), "jti": "x"}
    return jwt.encode({**base, **claims}, settings.secret_key.get_secret_value(), algorithm="HS256")


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda s, uid: "garbage", id="garbage"),
        pytest.param(lambda s, uid: "a.b.c", id="three-parts"),
        pytest.param(
            lambda s, uid: _forge(s, sub=f"user:{uid}", exp=datetime.now(UTC) - timedelta(seconds=1)),
            id="expired",
        ),
        pytest.param(
            lambda s, uid: jwt.encode(
                {
                    "sub": f"user:{uid}",
                    "exp": datetime.now(UTC) + timedelta(minutes=5),
                    "iat": 0,
                    "jti": "x",
                },
                "another-secret-key-another-secret-key!!",
                algorithm="HS256",
            ),
            id="wrong-key",
        ),
        pytest.param(
            lambda s, uid: jwt.encode(
                {
                    "sub": f"user:{uid}",
                    "exp": datetime.now(UTC) + timedelta(minutes=5),
                    "iat": 0,
                    "jti": "x",
                },
                None,
                algorithm="none",
            ),
            id="alg-none",
        ),
        pytest.param(lambda s, uid: _forge(s, sub=f"service:{uid}"), id="wrong-subject"),
        pytest.param(lambda s, uid: _forge(s, sub="user:999999999"), id="no-such-user"),
    ],
)
async def test_bad_tokens_are_rejected(client, settings, staff, make_token):
    token = make_token(settings, staff.id)
    resp = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(resp, 401, "auth.invalid_token")
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_issue_and_decode_roundtrip(settings, staff):
    token = issue_token(settings, staff)
    claims = jwt.decode(token, settings.secret_key.get_secret_value(), algorithms=["HS256"])
    assert claims["sub"] == f"user:{staff.id}"
    assert claims["exp"] - claims["iat"] == settings.token_ttl_minutes * 60
    assert (
        claims["jti"]
        and claims["jti"]
        != jwt.decode(
            issue_token(settings, staff),
            settings.secret_key.get_secret_value(),
            algorithms=["HS256"],
        )["jti"]
    )
    assert decode_token(settings, token) == staff.id
    with pytest.raises(Problem) as exc:
        decode_token(settings, token + "x")
    assert exc.value.status == 401 and exc.value.code == "auth.invalid_token"


# --- API keys -----------------------------------------------------------------------------------


async def test_api_key_authenticates_a_service_account(client, session):
    dept = await make_org_unit(
        session,
        code="dept-mzj",
        name="区民政局",
        kind="department",
        region_code="500118000000",
        department_code="mzj",
    )
    account, key = await make_service_account(session, dept, name="民政业务系统")
    resp = await client.get("/api/v1/auth/me", headers=api_key_headers(key))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["kind"] == "service_account"
    assert body["id"] == account.id
    assert body["name"] == "民政业务系统"
    assert body["roles"] == ["service"]
    assert body["department_code"] == "mzj"
    assert body["org_unit"]["code"] == "dept-mzj"


async def test_wrong_api_keys_are_rejected(client, session, township):
    _account, key = await make_service_account(session, township)
    _, prefix, secret = key.split("_", 2)
    for bad in (
        f"ot_{prefix}_{secret}x",  # wrong secret
        f"ot_{prefix}_",  # empty secret
        f"ot_000000000000_{secret}",  # unknown prefix
        f"xx_{prefix}_{secret}",  # not our format
        "garbage",
    ):
        resp = await client.get("/api/v1/auth/me", headers=api_key_headers(bad))
        body = assert_problem(resp, 401, "auth.invalid_api_key")
        assert secret not in resp.text and prefix not in str(body)


async def test_inactive_service_account_is_rejected(client, session, township):
    _, key = await make_service_account(session, township, active=False)
    resp = await client.get("/api/v1/auth/me", headers=api_key_headers(key))
    assert_problem(resp, 401, "auth.account_disabled")


# --- the principal ------------------------------------------------------------------------------


async def test_principal_carries_org_unit_scope(session, settings, staff, township):
    p = await authenticate(session, settings, bearer=issue_token(settings, staff), api_key=None)
    assert (p.kind, p.id, p.name) == ("user", staff.id, "zhang.san")
    assert p.org_unit_id == township.id and p.org_unit_kind == "township"
    assert p.region_code == "500118101000" and p.region_prefix == "500118101"
    assert p.roles == frozenset({"township_staff"})
    assert p.actor == f"user:{staff.id}:zhang.san"
    assert not p.is_platform_admin


async def test_bearer_wins_over_api_key_when_both_are_sent(client, settings, session, staff, township):
    _, key = await make_service_account(session, township)
    resp = await client.get(
        "/api/v1/auth/me", headers={**auth_headers(settings, staff), **api_key_headers(key)}
    )
    assert resp.status_code == 200
    assert resp.json()["kind"] == "user"


async def test_principal_is_cached_on_request_state(session):
    from types import SimpleNamespace

    from app.auth.deps import current_principal
    from app.auth.principal import Principal

    cached = Principal("user", 1, "x", 1, "township", "500118101000", "500118101")
    request = SimpleNamespace(state=SimpleNamespace(principal=cached))
    # No credentials at all: only the cache can answer.
    assert await current_principal(request, session, bearer=None, api_key=None) is cached


def test_openapi_declares_both_security_schemes(app):
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes["UserToken"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["ServiceApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ServiceApiKey"]["description"],
    }
