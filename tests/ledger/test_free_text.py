"""Free text goes in and comes out as the clerk typed it (full-width punctuation, line breaks)."""

from __future__ import annotations

from tests.ledger.conftest import VILLAGE_A
from tests.ledger.test_records import assert_problem

HOUSES = "/api/v1/ledgers/house/records"


async def test_item14_free_text_is_stored_as_typed_through_the_api(client, world):
    remark = "墙体开裂（已上报住建办）\n2024年３月复查：裂缝扩大，“暂缓入住”。"
    r = await client.post(
        HOUSES,
        headers=world.a,
        json={
            "region_code": VILLAGE_A,
            "house_code": "５００１１８１０１２０１０００９０１",
            "standard_address": "  重庆市永川区临江镇某村４组１号  ",
            "remark": remark,
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["remark"] == remark
    assert created["standard_address"] == "重庆市永川区临江镇某村４组１号"  # trimmed, otherwise as typed
    assert created["house_code"] == "500118101201000901"  # a code: normalised
    got = (await client.get(f"{HOUSES}/{created['id']}", headers=world.a)).json()
    assert got["remark"] == remark
    edited = remark + "\n\n（二次复查）"
    r = await client.patch(
        f"{HOUSES}/{created['id']}", json={"remark": edited}, headers={**world.a, "If-Match": 'W/"1"'}
    )
    assert r.status_code == 200, r.text
    assert (await client.get(f"{HOUSES}/{created['id']}", headers=world.a)).json()["remark"] == edited
    hist = (await client.get(f"{HOUSES}/{created['id']}/history", headers=world.a)).json()["items"]
    change = next(h for h in hist if h["op"] == "update" and h["field"] == "remark")
    assert (change["before"], change["after"]) == (remark, edited)
    # Filters compare with what is stored.
    listed = (
        await client.get(
            HOUSES, params={"standard_address": "eq.重庆市永川区临江镇某村４组１号"}, headers=world.a
        )
    ).json()["items"]
    assert [h["id"] for h in listed] == [created["id"]]


async def test_item14_nul_in_free_text_is_a_422_not_a_500(client, world):
    r = await client.post(
        HOUSES,
        headers=world.a,
        json={
            "region_code": VILLAGE_A,
            "house_code": "500118101201000902",
            "standard_address": "某村4组2号",
            "remark": "a\u0000b",
        },
    )
    body = assert_problem(r, 422, "validation.failed")
    # The request guard (app/inputs.py) refuses NUL anywhere in a body before the endpoint runs;
    # coercion's own `text.control` check stays for paths without HTTP (tests/catalog/test_coerce.py).
    assert body["errors"][0]["path"] == "body.remark" and body["errors"][0]["code"] == "text.nul"
