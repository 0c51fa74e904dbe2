"""C2-8: once the 12 platform and 16 department items of the merged disability ledger arrive by push
(the platform connector and 民政, 残联, 人社), item-based ledger_upkeep_share(disability) = 0/28 and
every item is fed; the template the forms became is pull-only, so townships type nothing."""

from __future__ import annotations

from datetime import date

from app.catalog.validators import make_id_card
from tests.consolidation.forms import go_live_disability
from tests.factories import api_key_headers, make_org_unit, make_service_account
from tests.world import VILLAGE_A


async def _source(session, dept: str) -> dict:
    unit = await make_org_unit(
        session,
        code=f"feed:{dept}",
        name=dept,
        kind="department",
        region_code="500118000000",
        department_code=dept,
    )
    _, key = await make_service_account(session, unit, name=f"{dept}-feed")
    return api_key_headers(key)


async def _push(client, headers, ledger: str, records: list[dict]) -> dict:
    r = await client.post(f"/api/v1/push/{ledger}", headers=headers, json=records)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["counts"]["rejected"] == 0, out["results"]
    return out


async def test_c2_8_all_28_items_fed_by_push_leave_townships_nothing_to_keep(client, session, world):
    await go_live_disability(client, world)
    before = (
        await client.get("/api/v1/legacy-forms/breakdown?ledger=disability", headers=world.admin)
    ).json()
    assert (before["township"], before["items"], before["fed_by_push"]) == (0, 28, 0)
    src = {d: await _source(session, d) for d in ("dsjj", "cl", "mzj", "rsj")}
    pid = make_id_card("500118", date(1970, 3, 4), 21, "1")
    ev = {"effective_at": "2024-06-01"}
    # City platform connector: 8 person items, the house (code, address), the household
    # (户别, 户口簿户号).
    await _push(
        client,
        src["dsjj"],
        "person",
        [
            {
                **ev,
                "source_event_id": "P1",
                "id_number": pid,
                "name": "陈七",
                "sex": "1",
                "birth_date": "1970-03-04",
                "ethnicity": "01",
                "household_type": "1",
                "hukou_address": "重庆市永川区临江镇临江村1组",
                "death_date": "2024-05-30",
                "region_code": VILLAGE_A,
            }
        ],
    )
    await _push(
        client,
        src["dsjj"],
        "house",
        [
            {
                **ev,
                "source_event_id": "H1",
                "house_code": f"{VILLAGE_A}H0001",
                "standard_address": "永川区临江镇临江村1组1号",
                "region_code": VILLAGE_A,
            }
        ],
    )
    await _push(
        client,
        src["dsjj"],
        "household",
        [
            {
                **ev,
                "source_event_id": "HH1",
                "household_no": f"{VILLAGE_A}0001",
                "household_kind": "1",
                "hukou_no": "A0001",
                "region_code": VILLAGE_A,
            }
        ],
    )
    # 残联: the certificate and its business results, creating the extension row under the person.
    await _push(
        client,
        src["cl"],
        "disability",
        [
            {
                **ev,
                "source_event_id": "C1",
                "certificate_number": pid + "42",
                "parent_key": pid,
                "disability_type": "4",
                "disability_level": "2",
                "certificate_issued_on": "2020-01-01",
                "certificate_valid_until": "2030-01-01",
                "rehabilitation_need": "肢体康复",
                "rehabilitation_received": True,
                "assistive_device": "轮椅",
                "education_level": "初中",
            }
        ],
    )
    # 民政 and 人社.
    await _push(
        client,
        src["mzj"],
        "person",
        [
            {
                **ev,
                "source_event_id": "M1",
                "id_number": pid,
                "marital_status": "20",
                "low_income_status": "1",
            }
        ],
    )
    await _push(
        client,
        src["mzj"],
        "disability",
        [
            {
                **ev,
                "source_event_id": "M2",
                "certificate_number": pid + "42",
                "living_subsidy": True,
                "care_subsidy": False,
                "subsidy_amount": 90,
            }
        ],
    )
    await _push(
        client,
        src["rsj"],
        "person",
        [{**ev, "source_event_id": "R1", "id_number": pid, "employment_status": "1"}],
    )
    await _push(
        client,
        src["rsj"],
        "disability",
        [{**ev, "source_event_id": "R2", "certificate_number": pid + "42", "employed": False}],
    )
    after = (await client.get("/api/v1/legacy-forms/breakdown?ledger=disability", headers=world.admin)).json()
    assert after == {
        "ledger": "disability",
        "items": 28,
        "platform": 12,
        "department": 16,
        "township": 0,
        "legacy_reports_merged": 11,
        "upkeep_share": 0.0,
        "fed_by_push": 28,
    }
