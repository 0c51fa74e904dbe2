"""C1-1 (Layer A, the seed case): 11 legacy disability forms → 1 extension with 28 distinct items,
platform ×12 + department ×16, township upkeep 0; at go-live the 11 forms are retired and mapped to
one
pull-only template. Also C7-3's ledger_source_breakdown(disability)."""

from __future__ import annotations

from tests.consolidation.forms import DISABILITY_FORMS

FORMS = "/api/v1/legacy-forms"


async def _register(client, headers, forms) -> list[int]:
    ids = []
    for name, dept, freq, headers_ in forms:
        r = await client.post(
            FORMS,
            headers=headers,
            json={
                "name": name,
                "department": dept,
                "frequency": freq,
                "level": "district",
                "headers": headers_,
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def test_c1_1_eleven_disability_forms_become_one_extension_of_28_items_no_township_upkeep(
    client, world
):
    ids = await _register(client, world.admin, DISABILITY_FORMS)
    r = await client.post(f"{FORMS}/proposals", headers=world.admin, json={"form_ids": ids})
    assert r.status_code == 200, r.text
    props = r.json()["items"]
    assert len(props) == 1
    p = props[0]
    assert (p["subject"], p["subject_kind"], p["base_ledger"]) == (
        "disability",
        "extension",
        "person",
    )
    assert p["legacy_reports_merged"] == 11 and p["item_count"] == 28
    assert p["by_source"] == {"platform": 12, "department": 16, "township": 0} and p["township_upkeep"] == 0
    items = {i["field"] and f"{i['ledger']}.{i['field']}": i for i in p["items"]}
    assert len(items) == 28 and not any(i["new_item"] for i in p["items"])
    # Name and ID are in all 11 forms, under their synonyms.
    assert items["person.id_number"]["forms"] == 11
    assert set(items["person.id_number"]["headers"]) == {"身份证号", "身份证号码", "公民身份号码"}
    assert items["person.name"]["forms"] == 11 and set(items["person.name"]["headers"]) == {
        "姓名",
        "名字",
    }
    # 残疾等级 / 残疾级别 is the extension's item, not the person's flag; 残疾证号 ≈ 残疾人证号.
    assert set(items["disability.disability_level"]["headers"]) == {"残疾等级", "残疾级别"}
    assert "person.disability_level" not in items
    assert set(items["disability.certificate_number"]["headers"]) == {"残疾人证号", "残疾证号"}
    assert items["house.standard_address"]["path"] == "residence.standard_address"
    assert items["person.low_income_status"]["owner"] == "mzj"
    # 月报 ×4 … : what townships sent per year before.
    assert p["legacy_submissions_per_year"] == 12 * 4 + 4 * 4 + 1 * 3

    # Go live: the department defines the pull-only template drafted by the proposal, and the
    # forms retire.
    spec = p["template"]
    assert all(c["kind"] == "field" for c in spec["columns"]) and len(spec["columns"]) == 28
    r = await client.post("/api/v1/report-templates", headers=world.dept, json=spec)
    assert r.status_code == 201, r.text
    template = r.json()
    r = await client.post(
        f"{FORMS}/go-live",
        headers=world.dept,
        json={"form_ids": ids, "template_id": template["id"], "ledger": "disability"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["pull_only"] is True
    assert {(f["state"], f["template_id"], f["target_ledger"]) for f in r.json()["items"]} == {
        ("retired", template["id"], "disability")
    }
    assert (await client.get(f"{FORMS}?state=active", headers=world.admin)).json()["items"] == []
    assert len((await client.get(f"{FORMS}?state=retired", headers=world.admin)).json()["items"]) == 11
    # A retired form is not proposed again.
    r = await client.post(f"{FORMS}/proposals", headers=world.admin, json={"form_ids": ids[:1]})
    assert r.status_code == 422
    b = (await client.get(f"{FORMS}/breakdown?ledger=disability", headers=world.admin)).json()
    assert b == {
        "ledger": "disability",
        "items": 28,
        "platform": 12,
        "department": 16,
        "township": 0,
        "legacy_reports_merged": 11,
        "upkeep_share": 0.0,
        "fed_by_push": 0,
    }


async def test_township_kept_and_unknown_headers_count_as_township_upkeep(client, world):
    forms = [
        (
            "残疾人监护情况表",
            "cl",
            "monthly",
            ["姓名", "身份证号", "残疾类别", "监护人姓名", "本月走访次数"],
        ),
        ("残疾人证核查表", "cl", "monthly", ["名字", "公民身份号码", "残疾人证号"]),
    ]
    ids = await _register(client, world.admin, forms)
    p = (await client.post(f"{FORMS}/proposals", headers=world.admin, json={"form_ids": ids})).json()[
        "items"
    ][0]
    assert p["subject"] == "disability" and p["item_count"] == 6
    assert p["by_source"] == {"platform": 2, "department": 2, "township": 2} and p["township_upkeep"] == 2
    by_label = {i["label"]: i for i in p["items"]}
    assert (
        by_label["监护人姓名"]["field"] == "guardian_name" and by_label["监护人姓名"]["source"] == "township"
    )
    assert by_label["本月走访次数"]["new_item"] is True and by_label["本月走访次数"]["path"] is None


async def test_only_departments_and_the_platform_keep_the_register(client, world):
    body = {"name": "x", "frequency": "monthly", "headers": ["姓名"]}
    r = await client.post(FORMS, headers=world.a, json=body)
    assert r.status_code == 403
    r = await client.post(FORMS, headers=world.dept, json={**body, "department": "mzj"})
    assert r.status_code == 403 and r.json()["code"] == "legacy.not_own_department"
    r = await client.post(FORMS, headers=world.dept, json=body)
    assert r.status_code == 201 and r.json()["department_code"] == "cl"
