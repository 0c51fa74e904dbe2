"""Bad input is a 4xx, never a 500 (issue 9's list, fixed in the generic layers): NUL characters, lone
surrogates, non-finite and huge numbers, unbounded integers, oversized bodies."""

from __future__ import annotations

import pytest

from app.config import Settings
from tests.world import VILLAGE_A

HOUSES = "/api/v1/ledgers/house/records"
JSON = {"content-type": "application/json"}


def problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:400])
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code, body
    return body


def house(**extra) -> bytes:
    import json

    base = {"region_code": VILLAGE_A, "house_code": VILLAGE_A + "H00001", "standard_address": "临江村1组"}
    return json.dumps({**base, **extra}).encode()


async def test_nul_in_login_is_422_unauthenticated(client):
    r = await client.post("/api/v1/auth/token", json={"username": "ad\u0000min", "password": "x"})
    assert problem(r, 422, "validation.failed")["errors"][0]["path"] == "body.username"
    r = await client.post("/api/v1/auth/token", data={"username": "ad\u0000min", "password": "x"})
    assert problem(r, 422, "validation.failed")["errors"][0]["path"] == "body.username"
    assert "ad" not in r.json()["errors"][0]["message"]  # the value is not echoed


async def test_nul_in_query_path_and_body_is_422(client, world):
    r = await client.get(HOUSES, params={"standard_address": "eq.a\u0000b"}, headers=world.a)
    assert problem(r, 422, "validation.failed")["errors"][0]["path"] == "query.standard_address"
    r = await client.get("/api/v1/catalog/ledgers/house%00", headers=world.a)
    assert problem(r, 422, "validation.failed")["errors"][0]["path"] == "path"
    r = await client.post(HOUSES, content=house(remark="墙体\u0000开裂"), headers={**world.a, **JSON})
    assert problem(r, 422, "validation.failed")["errors"][0]["path"] == "body.remark"


@pytest.mark.parametrize(
    "raw",
    [
        b'"\\ud800"',
        b"1e400",
        b"-1e400",
        b"NaN",
        b"Infinity",
        b"-Infinity",
    ],
)
async def test_non_finite_numbers_and_lone_surrogates_are_422(client, world, raw):
    body = house().replace(b'"standard_address"', b'"floor_area": ' + raw + b', "standard_address"')
    r = await client.post(HOUSES, content=body, headers={**world.a, **JSON})
    assert problem(r, 422, "validation.failed")["errors"][0]["code"] == "schema.json_invalid"


@pytest.mark.parametrize(
    "field, value",
    [
        ("floor_area", "1e400"),
        ("floor_area", "NaN"),
        ("floor_area", "-Infinity"),
        ("built_year", "1e999999999"),
        ("built_year", "99999999999999999999999"),
    ],
)
async def test_huge_numbers_as_text_are_422(client, world, field, value):
    r = await client.post(HOUSES, content=house(**{field: value}), headers={**world.a, **JSON})
    assert problem(r, 422, "validation.failed")["errors"][0]["path"] == f"body.{field}"


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", "/api/v1/service-accounts?offset=589490975579764359168"),
        ("GET", "/api/v1/users?offset=9223372036854775808"),
        ("GET", "/api/v1/org-units?offset=99999999999999999999"),
        ("DELETE", "/api/v1/grants/99999999999999999999"),
        ("GET", "/api/v1/audit?before_id=99999999999999999999"),
        ("GET", "/api/v1/audit?record_id=-99999999999999999999"),
        ("GET", "/api/v1/report-tasks?template_id=99999999999999999999"),
    ],
)
async def test_unbounded_integers_are_422(client, world, method, url):
    r = await client.request(method, url, headers=world.admin)
    problem(r, 422, "validation.failed")


async def test_body_over_the_cap_is_413(app, client, world):
    s = app.state.settings
    old = s.max_body_bytes
    s.max_body_bytes = 1000
    try:
        r = await client.post(HOUSES, content=house(remark="x" * 2000), headers={**world.a, **JSON})
        assert problem(r, 413, "request.too_large")["max_bytes"] == 1000

        async def stream():  # no Content-Length: counted as it arrives
            yield house(remark="x" * 600)[:700]
            yield b"x" * 600

        r = await client.post(HOUSES, content=stream(), headers={**world.a, **JSON})
        problem(r, 413, "request.too_large")
        r = await client.post(HOUSES, content=house(), headers={**world.a, **JSON})
        assert r.status_code == 201, r.text
    finally:
        s.max_body_bytes = old


async def test_upload_over_its_cap_is_413(app, client, world):
    s = app.state.settings
    old = s.max_upload_bytes
    s.max_upload_bytes = 10_000
    try:
        r = await client.post(
            "/api/v1/report-tasks/1/xlsx", files={"file": ("t.xlsx", b"x" * 20_000)}, headers=world.a
        )
        problem(r, 413, "request.too_large")
    finally:
        s.max_upload_bytes = old


def test_caps_are_configurable(monkeypatch):
    monkeypatch.setenv("ONETABLE_MAX_BODY_BYTES", "12345")
    monkeypatch.setenv("ONETABLE_MAX_UPLOAD_BYTES", "54321")
    s = Settings()
    assert (s.max_body_bytes, s.max_upload_bytes) == (12345, 54321)
    assert Settings.model_fields["max_body_bytes"].default == 10 * 1024 * 1024


async def test_query_parameters_that_are_not_utf8_are_4xx_problems(client, world):
    r = await client.get(HOUSES + "?standard_address=eq.%ff%fe", headers=world.a)
    assert problem(r, 422, "validation.failed")["errors"][0] == {
        "path": "query.standard_address",
        "code": "text.invalid_utf8",
        "message": "须为有效的 UTF-8 文本",
    }
    r = await client.get(HOUSES + "?%c3=eq.1", headers=world.a)
    assert problem(r, 422, "validation.failed")["errors"][0]["path"] == "query"
    # Valid UTF-8, percent-encoded or not, is untouched.
    assert (
        await client.get(HOUSES + "?standard_address=eq.%E4%B8%B4%E6%B1%9F", headers=world.a)
    ).status_code == 200


@pytest.mark.parametrize(
    "query, code",
    [
        ("query=%ff%fe", "request.invalid_utf8"),  # the document itself
        ("query=%7Bme%7Bname%7D%7D&variables=%ff", "request.invalid_utf8"),
        (
            "query=%7Bme%7Bname%7D%7D&variables=%7B%22a%22%3A%22%5Cud800%22%7D",
            "request.json_invalid",
        ),  # lone surrogate
        ("query=%7Bme%7Bname%7D%7D&variables=%7B%22a%22%3A1e400%7D", "request.json_invalid"),
        (
            "query=%7Bme%7Bname%7D%7D&variables=1",
            "request.bad",
        ),  # not an object: strawberry's text/plain 400 before
    ],
)
async def test_graphql_get_with_unreadable_parameters_is_400_problem(client, world, query, code):
    r = await client.get("/graphql?" + query, headers={**world.a, "accept": "application/json"})
    problem(r, 400, code)
    ok = await client.get(
        "/graphql?query=%7Bme%7Bname%7D%7D", headers={**world.a, "accept": "application/json"}
    )
    assert ok.status_code == 200 and ok.json()["data"]["me"]["name"] == "ta"
