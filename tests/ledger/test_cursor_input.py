"""Item 15: a cursor is input like any other. Whatever a caller puts in it, REST answers 400
problem+json naming the cursor, never a 500 (the same decoding serves GraphQL: tests/graphql/test_limits.py)."""

from __future__ import annotations

import base64
import json
from datetime import date

import pytest

from app.catalog.validators import make_id_card
from tests.world import VILLAGE_A

RECORDS = "/api/v1/ledgers/{}/records"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def j(value) -> str:
    return b64(json.dumps(value).encode())


# (ledger, order, cursor): every shape a hand-made or damaged cursor can take.
BAD_CURSORS = [
    ("person", None, "not a cursor!!"),
    ("person", None, "€€€"),
    ("person", None, b64(b"hello, not json")),
    ("person", None, j({"region_code": "1"})),
    ("person", None, j([VILLAGE_A])),  # wrong length
    ("person", None, j([VILLAGE_A, 1, 2])),
    ("person", None, j([VILLAGE_A, "abc"])),  # text where the id (bigint) is expected
    ("person", None, j([VILLAGE_A, 10**30])),  # past bigint
    ("person", None, j([VILLAGE_A, 1.5])),
    ("person", None, j([True, 1])),  # boolean where text is expected
    ("person", None, j([[1], {"a": 1}])),
    ("person", None, j([VILLAGE_A + "\u0000", 1])),
    ("person", "birth_date", j(["not-a-date", 1])),
    ("person", "birth_date", j([20240101, 1])),  # a number where a date is expected
    ("person", "birth_date", j(["1990-02-30", 1])),
    ("person", "updated_at", j(["2024-13-01T00:00:00", 1])),
    ("person", "updated_at", j(["yesterday-ish", 1])),
    ("house", "floor_area", j(["1e400", 1])),  # numeric overflow of the column
    ("house", "floor_area", j(["NaN", 1])),
    ("house", "built_year", j(["nineteen ninety", 1])),
    ("house", "built_year", j([9223372036854775808, 1])),
    ("person", None, "A" * 10_000),
]


@pytest.mark.parametrize("ledger, order, cursor", BAD_CURSORS)
async def test_item15_malformed_cursor_is_400_problem(client, world, ledger, order, cursor):
    r = await client.post(
        RECORDS.format(ledger),
        json={
            "region_code": VILLAGE_A,
            **(
                {"name": "王秀英", "id_number": make_id_card("500118", date(1990, 1, 1), 100, "2")}
                if ledger == "person"
                else {
                    "house_code": VILLAGE_A + "H00001",
                    "standard_address": "重庆市永川区临江镇临江村1组1号",
                }
            ),
        },
        headers=world.a,
    )
    assert r.status_code == 201, r.text
    params = {"cursor": cursor, **({"order": order} if order else {})}
    r = await client.get(RECORDS.format(ledger), params=params, headers=world.a)
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "query.cursor_invalid"
    assert body["errors"] == [
        {"path": "query.cursor", "code": "cursor.invalid", "message": body["errors"][0]["message"]}
    ]
    assert "not-a-date" not in r.text and "1e400" not in r.text  # the value is not echoed


async def test_item15_good_cursor_still_pages(client, world):
    for i in range(3):
        r = await client.post(
            RECORDS.format("house"),
            json={
                "region_code": VILLAGE_A,
                "house_code": f"{VILLAGE_A}H0000{i}",
                "standard_address": f"重庆市永川区临江镇临江村{i}组",
                "floor_area": 80 + i,
            },
            headers=world.a,
        )
        assert r.status_code == 201, r.text
    seen, cursor = [], None
    while True:
        params = {"order": "floor_area.desc", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(RECORDS.format("house"), params=params, headers=world.a)).json()
        seen += [row["floor_area"] for row in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [82, 81, 80]
