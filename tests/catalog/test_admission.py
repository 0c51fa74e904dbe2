"""Catalogue admission: a department proposes the house-safety grade, the admin approves, and in the
same process, without a restart, the field is written and read (REST, GraphQL), masked or hidden for
others by sensitivity, used in a new report template, shown in OpenAPI and the YAML export, and Alembic
sees metadata equal to the database. Rejections and bad proposals change nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.catalog.admission import live
from app.catalog.loader import load_catalog
from app.db.base import Base
from app.org.models import Region
from tests.factories import auth_headers, make_org_unit, make_user
from tests.world import VILLAGE_A, VILLAGE_B, A, B

CJK = re.compile(r"[\u4e00-\u9fff]")
GRADE = {
    "code": "safety_grade",
    "label": "房屋安全等级",
    "type": "code",
    "codelist": "house_safety_grade",
    "sensitivity": "internal",
    "frequency": "yearly",
}
SUBSIDY = {
    "code": "renovation_subsidy",
    "label": "危房改造补助金额（元）",
    "type": "decimal",
    "precision": 10,
    "scale": 2,
    "sensitivity": "sensitive",
    "mask": "full",
    "frequency": "yearly",
}
GRADES = {
    "code": "house_safety_grade",
    "label": "房屋安全等级",
    "standard": "JGJ 125-2016",
    "values": {"A": "A级", "B": "B级", "C": "C级", "D": "D级"},
}
PROPOSAL = {
    "kind": "fields",
    "ledger": "house",
    "fields": [GRADE, SUBSIDY],
    "codelists": [GRADES],
    "reason": "低保家庭住房安全情况季报需要房屋安全鉴定等级和危房改造补助",
}
TEMPLATE = {
    "code": "house_safety",
    "name": "低保家庭住房安全情况",
    "kind": "list",
    "ledger": "house",
    "filter": [{"path": "safety_grade", "op": "in", "value": ["C", "D"]}],
    "columns": [
        {"kind": "field", "code": "house_code", "path": "house_code"},
        {"kind": "field", "code": "grade", "path": "safety_grade"},
        {"kind": "gap", "code": "visited", "label": "本季度是否走访", "type": "boolean"},
    ],
}
HOUSES = "{ houses { nodes { houseCode safetyGrade renovationSubsidy } } }"


@pytest.fixture(autouse=True)
def _no_catalogue_left_behind():
    yield
    live.forget()  # not needed for correctness (versions are keyed by their random stamp): tidy memory


@pytest.fixture
async def mzj(session, world, settings):
    for code, name, level, parent in [
        ("500118000000", "永川区", 3, None),
        (A + "000", "临江镇", 4, "500118000000"),
        (B + "000", "何埂镇", 4, "500118000000"),
        (VILLAGE_A, "临江村", 5, A + "000"),
        (VILLAGE_B, "何埂村", 5, B + "000"),
    ]:
        session.add(Region(code=code, name=name, level=level, parent_code=parent))
    unit = await make_org_unit(
        session,
        code="dept:mzj",
        name="区民政局",
        kind="department",
        region_code="500118000000",
        department_code="mzj",
    )
    user = await make_user(session, username="mz", org_unit=unit, roles=["dept_admin"])
    await session.flush()
    return auth_headers(settings, user)


async def _house(client, world) -> dict:
    r = await client.post(
        "/api/v1/ledgers/house/records",
        headers=world.a,
        json={
            "region_code": VILLAGE_A,
            "house_code": "500118101201A001",
            "standard_address": "临江镇临江村1组8号",
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _gql(client, headers, query):
    r = await client.post("/graphql", json={"query": query}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _propose(client, headers, body, status=201) -> dict:
    r = await client.post("/api/v1/catalog/proposals", json=body, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


async def test_house_safety_grade_admitted_and_used_without_restart(
    client, app, settings, sessionmaker, world, mzj, connection
):
    from app.main import create_app

    other = create_app(settings, manage_engine=False)  # a second process, started before the approval
    other.state.sessionmaker = sessionmaker
    house = await _house(client, world)

    # The grade is close in meaning to 是否危房: the proposer sees it and must say why it is not the same.
    dup = await _propose(client, mzj, PROPOSAL, 409)
    assert dup["code"] == "catalog.possible_duplicate"
    assert [(c["path"], [m["field"] for m in c["candidates"]]) for c in dup["candidates"]] == [
        ("body.fields.0.label", ["is_dangerous"])
    ]
    assert all(CJK.search(e["message"]) for e in dup["errors"])
    p = await _propose(
        client, mzj, {**PROPOSAL, "not_duplicate_reason": "是否危房只分是否，安全等级为 A–D 鉴定结论"}
    )
    assert p["state"] == "proposed" and p["department_code"] == "mzj" and p["candidates"][0]["candidates"]
    assert [f["owner"] for f in p["fields"]] == ["mzj", "mzj"]

    # Before approval nothing changed, and only the platform admin approves.
    r = await client.patch(
        f"/api/v1/ledgers/house/records/{house['id']}",
        headers=mzj,
        json={"safety_grade": "C", "version": house["version"]},
    )
    assert r.status_code in (403, 422), r.text
    r = await client.post("/api/v1/report-templates", headers=mzj, json=TEMPLATE)
    assert r.status_code == 422 and "body.columns.1.path" in {e["path"] for e in r.json()["errors"]}, r.text
    r = await client.post(f"/api/v1/catalog/proposals/{p['id']}/approve", json={}, headers=mzj)
    assert r.status_code == 403
    r = await client.post(
        f"/api/v1/catalog/proposals/{p['id']}/approve", json={"comment": "同意"}, headers=world.admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.json()["applied_version"] == 2
    assert (await client.get("/api/v1/catalog/version", headers=mzj)).json()["version"] == 2

    # The owner writes and reads both fields in plain, through REST and GraphQL.
    r = await client.patch(
        f"/api/v1/ledgers/house/records/{house['id']}",
        headers=mzj,
        json={"safety_grade": "C", "renovation_subsidy": 12000, "version": house["version"]},
    )
    assert r.status_code == 200, r.text
    got = (await client.get(f"/api/v1/ledgers/house/records/{house['id']}", headers=mzj)).json()
    assert got["safety_grade"] == "C" and float(got["renovation_subsidy"]) == 12000
    r = await client.patch(
        f"/api/v1/ledgers/house/records/{house['id']}",
        headers=mzj,
        json={"safety_grade": "E", "version": got["version"]},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "body.safety_grade"
    body = await _gql(client, mzj, HOUSES)
    assert body["data"]["houses"]["nodes"] == [
        {"houseCode": "500118101201A001", "safetyGrade": "C", "renovationSubsidy": 12000}
    ], body

    # Others: the internal grade is readable, the sensitive subsidy masked, even for the township whose
    # `*` write grant covers the house ledger; the township can't write it either.
    for headers in (world.a, world.dept):
        rec = (await client.get(f"/api/v1/ledgers/house/records/{house['id']}", headers=headers)).json()
        assert rec["safety_grade"] == "C" and rec["renovation_subsidy"] == "****", rec
    body = await _gql(client, world.a, HOUSES)  # a masked number has no masked form: null with MASKED_FIELD
    assert body["data"]["houses"]["nodes"] == [
        {"houseCode": "500118101201A001", "safetyGrade": "C", "renovationSubsidy": None}
    ]
    assert "MASKED_FIELD" in [e.get("extensions", {}).get("code") for e in body["errors"]]
    r = await client.patch(
        f"/api/v1/ledgers/house/records/{house['id']}",
        headers=world.a,
        json={"renovation_subsidy": 1, "version": got["version"]},
    )
    assert r.status_code == 403 and r.json()["errors"][0]["path"] == "body.renovation_subsidy"
    r = await client.get("/api/v1/ledgers/house/records?renovation_subsidy=gt.100", headers=world.a)
    assert r.status_code == 403  # masked: no filter that would tell the value

    # The next template uses the new field at once (the same template was refused before the approval).
    r = await client.post("/api/v1/report-templates", headers=mzj, json=TEMPLATE)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["columns"][1]["path"] == "safety_grade"

    # A process started before the approval serves the field too: no restart.
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://other") as c2:
        assert (await _gql(c2, mzj, HOUSES))["data"]["houses"]["nodes"][0]["safetyGrade"] == "C"
        doc = (await c2.get("/openapi.json")).json()
        props = doc["components"]["schemas"]["LedgerRecord.house"]["allOf"][1]["properties"]
        assert props["safety_grade"]["title"] == "房屋安全等级"
        assert "A=A级" in props["safety_grade"]["description"]

    # The YAML export is the effective catalogue and loads back.
    r = await client.get("/api/v1/catalog/export", headers=mzj)
    assert r.status_code == 200 and r.text.startswith("# 一表通数据标准")
    tmp = Path(__file__).parent / f"_export_{id(r)}"
    tmp.mkdir()
    try:
        (tmp / "catalog.yaml").write_text(r.text, encoding="utf-8")
        cat = load_catalog(tmp)
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    assert cat.ledgers["house"].field("safety_grade").codelist == "house_safety_grade"
    assert cat.codelists["house_safety_grade"].values["D"] == "D级"

    # Alembic: the effective metadata equals the database; the YAML-only metadata misses the new columns.
    def diffs(sync_conn):
        effective = compare_metadata(
            MigrationContext.configure(sync_conn), live.metadata_of(sync_conn, Base.metadata)
        )
        yaml_only = compare_metadata(MigrationContext.configure(sync_conn), Base.metadata)
        return effective, yaml_only

    effective, yaml_only = await connection.run_sync(diffs)
    assert effective == []
    assert {d[3].name for d in yaml_only if d[0] == "remove_column"} == {"safety_grade", "renovation_subsidy"}


async def test_rejected_proposal_changes_nothing(client, world, mzj):
    p = await _propose(client, mzj, {**PROPOSAL, "not_duplicate_reason": "不同"})
    r = await client.post(f"/api/v1/catalog/proposals/{p['id']}/reject", json={}, headers=world.admin)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "body.comment"
    r = await client.post(
        f"/api/v1/catalog/proposals/{p['id']}/reject", json={"comment": "请先与住建委核对"}, headers=mzj
    )
    assert r.status_code == 403
    r = await client.post(
        f"/api/v1/catalog/proposals/{p['id']}/reject",
        json={"comment": "请先与住建委核对"},
        headers=world.admin,
    )
    assert (
        r.status_code == 200 and r.json()["state"] == "rejected" and r.json()["comment"] == "请先与住建委核对"
    )
    r = await client.post(f"/api/v1/catalog/proposals/{p['id']}/approve", json={}, headers=world.admin)
    assert r.status_code == 409
    assert (await client.get("/api/v1/catalog/version", headers=mzj)).json() == {
        "version": 1,
        "stamp": "yaml",
    }
    house = (await client.get("/api/v1/catalog/ledgers/house", headers=mzj)).json()
    assert "safety_grade" not in {f["code"] for f in house["fields"]}
    body = await _gql(client, mzj, "{ houses { nodes { safetyGrade } } }")
    assert body.get("errors") and not body.get("data")
    # Another department does not see mzj's proposals; mzj sees its own.
    assert [
        x["id"] for x in (await client.get("/api/v1/catalog/proposals", headers=mzj)).json()["items"]
    ] == [p["id"]]
    assert (await client.get("/api/v1/catalog/proposals", headers=world.dept)).json()["items"] == []
    assert (await client.get(f"/api/v1/catalog/proposals/{p['id']}", headers=world.dept)).status_code == 404


@pytest.mark.parametrize(
    ("field", "codelists", "path", "code"),
    [
        ({**GRADE, "type": "money"}, [GRADES], "body.fields.0.type", "schema.literal_error"),
        ({**GRADE, "codelist": "no_such_list"}, [], "body.fields.0.codelist", "catalog.codelist_unknown"),
        (
            {**GRADE, "code": "is_dangerous", "label": "危房标识"},
            [GRADES],
            "body.fields.0.code",
            "catalog.code_taken",
        ),
        ({**GRADE, "code": "region_code"}, [GRADES], "body.fields.0.code", "catalog.code_reserved"),
        ({**GRADE, "code": "residents"}, [GRADES], "body.fields.0.code", "catalog.code_taken"),
        ({**SUBSIDY, "mask": "none"}, [], "body.fields.0.mask", "catalog.mask_required"),
        ({**GRADE, "owner": "gaj"}, [GRADES], "body.fields.0.owner", "catalog.owner_not_own"),
        (GRADE, [{**GRADES, "code": "sex"}], "body.codelists.0.code", "catalog.codelist_taken"),
    ],
)
async def test_bad_proposals_are_422_at_their_path(client, world, mzj, field, codelists, path, code):
    r = await client.post(
        "/api/v1/catalog/proposals",
        headers=mzj,
        json={**PROPOSAL, "fields": [field], "codelists": codelists, "not_duplicate_reason": "不同"},
    )
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert (path, code) in [(e["path"], e["code"]) for e in errors], errors
    assert all(CJK.search(e["message"]) for e in errors)
    assert (await client.get("/api/v1/catalog/proposals", headers=mzj)).json()["items"] == []


async def test_already_in_the_catalogue_by_meaning(client, world, mzj):
    r = await client.post(
        "/api/v1/catalog/proposals/check",
        headers=mzj,
        json={"labels": ["撂荒面积（亩）", "身份证号码", "本季度走访次数"]},
    )
    assert r.status_code == 200
    found = {i["label"]: [(c["ledger"], c["field"]) for c in i["candidates"]] for i in r.json()["items"]}
    assert found["撂荒面积（亩）"] == [("land", "is_abandoned")]
    assert found["身份证号码"][0] == ("person", "id_number")
    assert found["本季度走访次数"] == []
    # Proposing it anyway stops at the candidates until the proposer confirms with a reason.
    body = {
        "kind": "fields",
        "ledger": "land",
        "reason": "撂荒整治台账",
        "fields": [{"code": "abandoned_area_mu", "label": "撂荒面积（亩）", "type": "decimal"}],
    }
    dup = await _propose(client, world.admin, body, 422)  # the platform admin names the owner
    assert dup["errors"][0]["path"] == "body.fields.0.owner"
    unit = await _propose(client, mzj, body, 409)
    assert unit["candidates"][0]["candidates"][0]["field"] == "is_abandoned"
    ok = await _propose(client, mzj, {**body, "not_duplicate_reason": "是否撂荒只记是否，需要面积"})
    assert ok["not_duplicate_reason"] and ok["candidates"][0]["candidates"][0]["label"] == "是否撂荒"


async def test_extension_ledger_secret_field_hidden_from_others(client, world, mzj):
    p = await _propose(
        client,
        mzj,
        {
            "kind": "extension",
            "ledger": "house_appraisal",
            "extension": {"label": "房屋安全鉴定", "parent": "house", "cardinality": "many"},
            "fields": [
                {"code": "appraised_on", "label": "鉴定日期", "type": "date"},
                {
                    "code": "appraiser_note",
                    "label": "鉴定人内部意见",
                    "type": "text",
                    "max_length": 200,
                    "sensitivity": "secret",
                },
            ],
            "reason": "住房安全鉴定记录",
            "not_duplicate_reason": "不同",
        },
    )
    r = await client.post(f"/api/v1/catalog/proposals/{p['id']}/approve", json={}, headers=world.admin)
    assert r.status_code == 200, r.text
    house = await _house(client, world)
    r = await client.post(
        "/api/v1/ledgers/house_appraisal/records",
        headers=mzj,
        json={"parent_id": house["id"], "appraised_on": "2026-11-01", "appraiser_note": "墙体开裂"},
    )
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["appraiser_note"] == "墙体开裂"
    for headers in (world.a, world.dept):
        seen = (
            await client.get(f"/api/v1/ledgers/house_appraisal/records/{rec['id']}", headers=headers)
        ).json()
        assert seen["appraised_on"] == "2026-11-01" and "appraiser_note" not in seen, seen
    body = await _gql(
        client, mzj, "{ houses { nodes { houseAppraisal { nodes { appraisedOn appraiserNote } } } } }"
    )
    assert body["data"]["houses"]["nodes"][0]["houseAppraisal"]["nodes"] == [
        {"appraisedOn": "2026-11-01", "appraiserNote": "墙体开裂"}
    ], body


async def test_a_name_that_clashes_in_graphql_is_refused_at_approval(client, world, mzj):
    p = await _propose(
        client,
        mzj,
        {
            "kind": "extension",
            "ledger": "code_list",
            "extension": {"label": "代码清单", "parent": "house"},
            "fields": [{"code": "note", "label": "清单说明", "type": "text"}],
            "reason": "测试",
            "not_duplicate_reason": "不同",
        },
    )
    r = await client.post(f"/api/v1/catalog/proposals/{p['id']}/approve", json={}, headers=world.admin)
    assert r.status_code == 409 and r.json()["code"] == "catalog.conflict", r.text
    assert (await client.get("/api/v1/catalog/version", headers=mzj)).json()["version"] == 1
    assert (await client.get("/api/v1/ledgers/code_list/records", headers=mzj)).status_code == 404
    assert "errors" not in await _gql(client, mzj, "{ houses { nodes { houseCode } } }")
