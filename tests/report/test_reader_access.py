"""Report reads go through the READER's own policy (issue 8, items 4-6): villages read their own rows at
their own levels and never fill; narrowed staff and service accounts of the department get nothing past
their own grants from a task, an aggregate (JSON / CSV / XLSX), GraphQL or a live pull-only report;
reads of plain sensitive values are audited with the record ids."""

from __future__ import annotations

import io
from datetime import date

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import select

from app.access.audit_models import AuditEntry
from app.access.models import Grant
from app.catalog.validators import make_id_card
from tests.factories import api_key_headers, auth_headers, make_org_unit, make_service_account, make_user
from tests.graphql.conftest import gql
from tests.report.test_workflow import VISIT, ok, problem
from tests.world import VILLAGE_A, A

T = "/api/v1/report-templates"
TASKS = "/api/v1/report-tasks"
ALL_STATES = "dispatched,in_progress,submitted,returned,approved"
AGG_Q = (
    "query($id: ID!, $p: String, $s: [String!]) { reportAggregate(templateId: $id, period: $p, states: $s) }"
)


async def _approved(client, world, body) -> int:
    tid = (await ok(await client.post(T, json=body, headers=world.dept), 201))["id"]
    sub = await ok(await client.post(f"{T}/{tid}/submit", headers=world.dept))
    if sub["state"] != "approved":  # pull-only templates are approved on submission
        await ok(await client.post(f"{T}/{tid}/approve", headers=world.admin))
    return tid


@pytest.fixture
async def visit(client, world, people):
    """VISIT approved and dispatched for 2026-11: (template id, task of A, task of B)."""
    tid = await _approved(client, world, VISIT)
    d = await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-11"}, headers=world.dept))
    by = {t["township_code"]: t["id"] for t in d["tasks"]}
    return tid, by[A + "000"], next(v for k, v in by.items() if k != A + "000")


@pytest.fixture
async def village(session, settings, world):
    unit = await make_org_unit(session, code=VILLAGE_A, name="临江村", kind="village", region_code=VILLAGE_A)
    user = await make_user(session, username="v201", org_unit=unit, roles=["village_staff"])
    # As in the demo: villages keep persons and houses of their own village; the disability ledger
    # falls to the defaults (sensitive fields masked).
    for ledger in ("person", "house"):
        session.add(
            Grant(
                grantee_type="role",
                role="village_staff",
                ledger=ledger,
                field="*",
                level="write",
                row_scope="own",
                created_by="test",
            )
        )
    await session.flush()
    return auth_headers(settings, user)


@pytest.fixture
async def narrowed(session, settings, world, dept_grants):
    """A 残联 staff member whose own grants hide the ID number and mask the disability type and subsidy."""
    user = await make_user(session, username="cl_narrow", org_unit=dept_grants, roles=["dept_staff"])
    for ledger, fld, level in (
        ("person", "id_number", "hidden"),
        ("disability", "disability_type", "masked"),
        ("disability", "subsidy_amount", "masked"),
    ):
        session.add(
            Grant(
                grantee_type="user",
                user_id=user.id,
                ledger=ledger,
                field=fld,
                level=level,
                row_scope="own",
                created_by="test",
            )
        )
    await session.flush()
    return auth_headers(settings, user)


@pytest.fixture
async def service(session, world, dept_grants):
    """A 残联 service account granted persons and houses of township A only, nothing of the disability ledger."""
    account, key = await make_service_account(session, dept_grants, name="cl-sync")
    for ledger, level in (("person", "read"), ("house", "read"), ("disability", "hidden")):
        session.add(
            Grant(
                grantee_type="service_account",
                service_account_id=account.id,
                ledger=ledger,
                field="*",
                level=level,
                row_scope="regions",
                regions=[A + "000"],
                created_by="test",
            )
        )
    await session.flush()
    return api_key_headers(key)


def _sheet(content: bytes) -> list[list]:
    return CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_index(0).to_python()


# ---- item 4 -------------------------------------------------------------------------------------


async def test_item4_village_user_sees_own_rows_at_own_levels(client, world, people, visit, village):
    _, task_a, _ = visit
    view = await ok(await client.get(f"{TASKS}/{task_a}", headers=village))
    mine = {str(p) for p in people.persons[A][:2]}  # the two disabled persons of village 201
    assert {r["key"] for r in view["items"]} == mine  # not the village-202 person of the same township
    assert all(r["region_code"] == VILLAGE_A for r in view["items"])
    assert view["editable"] is False
    for r in view["items"]:
        cells = r["cells"]
        assert cells["dtype"] == "****" and cells["level"] == "****"  # masked for a village, as REST does
        rec = await ok(
            await client.get(
                f"/api/v1/ledgers/disability/records/{people.disability[int(r['key'])]}", headers=village
            )
        )
        assert rec["disability_type"] == cells["dtype"]
        # Readable cells do appear, in plain.
        assert cells["name"].startswith("李") and len(cells["id_number"]) == 18 and cells["area"] > 80
    cols = {c["code"]: c for c in view["columns"]}
    assert cols["dtype"].get("masked") is True and "masked" not in cols["name"]
    # The XLSX carries the same cut.
    grid = _sheet((await client.get(f"{TASKS}/{task_a}/xlsx", headers=village)).content)
    assert len(grid) == 3 and {str(line[0]) for line in grid[1:]} == mine
    assert all("****" in line for line in grid[1:])


async def test_item4_village_user_cannot_fill_or_submit(client, world, people, visit, village):
    _, task_a, _ = visit
    key = str(people.persons[A][0])
    problem(
        await client.put(
            f"{TASKS}/{task_a}/cells",
            headers=village,
            json={"cells": [{"row": key, "column": "visited", "value": True}]},
        ),
        403,
        "report.not_filler",
    )
    problem(
        await client.put(f"{TASKS}/{task_a}/cells/{key}/visited", headers=village, json={"value": True}),
        403,
        "report.not_filler",
    )
    problem(await client.post(f"{TASKS}/{task_a}/submit", headers=village), 403, "report.not_filler")
    problem(await client.post(f"{TASKS}/{task_a}/refresh", headers=village), 403, "report.not_filler")
    problem(
        await client.post(
            f"{TASKS}/{task_a}/xlsx",
            headers=village,
            files={"file": ("t.xlsx", b"PK", "application/octet-stream")},
        ),
        403,
        "report.not_filler",
    )
    # The township office still fills.
    await ok(await client.put(f"{TASKS}/{task_a}/cells/{key}/visited", headers=world.a, json={"value": True}))


# ---- item 5 -------------------------------------------------------------------------------------


async def test_item5_narrowed_staff_reads_task_and_aggregate_within_own_grants(
    client, world, people, visit, narrowed
):
    tid, task_a, _ = visit
    dept_view = await ok(await client.get(f"{TASKS}/{task_a}", headers=world.dept))
    plain_ids = {r["cells"]["id_number"] for r in dept_view["items"]}
    plain_types = {r["key"]: r["cells"]["dtype"] for r in dept_view["items"]}
    assert all(len(i) == 18 for i in plain_ids) and "****" not in plain_types.values()

    view = await ok(await client.get(f"{TASKS}/{task_a}", headers=narrowed))
    assert len(view["items"]) == 3
    assert "id_number" not in {c["code"] for c in view["columns"]}
    for r in view["items"]:
        assert "id_number" not in r["cells"] and r["cells"]["dtype"] == "****"
        assert r["cells"]["subsidy"] == "****" and r["cells"]["subsidy_year"] is None  # no rebuild by formula
        assert (
            r["cells"]["name"] == next(d for d in dept_view["items"] if d["key"] == r["key"])["cells"]["name"]
        )
        assert r["cells"]["level"] not in (None, "****")  # not narrowed: plain
    text = str(view)
    assert not any(i in text for i in plain_ids)

    q = {"period": "2026-11", "states": ALL_STATES}
    agg = await ok(await client.get(f"{T}/{tid}/aggregate", params=q, headers=narrowed))
    assert len(agg["items"]) == 5 and not any(i in str(agg) for i in plain_ids)
    assert all(it["cells"]["dtype"] == "****" and it["cells"]["name"].startswith("李") for it in agg["items"])
    csv = (await client.get(f"{T}/{tid}/aggregate", params={**q, "format": "csv"}, headers=narrowed)).content
    csv = csv.decode("utf-8-sig")
    assert (
        "公民身份号码" not in csv and not any(i in csv for i in plain_ids) and "李" in csv and "****" in csv
    )
    assert not any(label in csv for label in ("视力残疾", "听力残疾", "言语残疾", "肢体残疾"))
    x = await client.get(f"{T}/{tid}/aggregate", params={**q, "format": "xlsx"}, headers=narrowed)
    grid = _sheet(x.content)
    assert "公民身份号码" not in grid[0] and "姓名" in grid[0]
    assert not any(i in str(grid) for i in plain_ids) and any("李" in str(v) for v in grid[1])
    body = await gql(client, narrowed, AGG_Q, {"id": str(tid), "p": "2026-11", "s": ALL_STATES.split(",")})
    g = body["data"]["reportAggregate"]
    assert g, body
    assert len(g["items"]) == 5 and not any(i in str(g) for i in plain_ids)
    assert all(it["cells"]["dtype"] == "****" for it in g["items"])
    # The department's own view (through its staff's policy) is unchanged: plain values.
    full = await ok(await client.get(f"{T}/{tid}/aggregate", params=q, headers=world.dept))
    assert {it["cells"]["id_number"] for it in full["items"]} >= plain_ids


async def test_item5_service_account_reads_only_its_granted_rows_and_fields(
    client, world, people, visit, service
):
    tid, task_a, task_b = visit
    view = await ok(await client.get(f"{TASKS}/{task_a}", headers=service))
    assert {r["key"] for r in view["items"]} == {str(p) for p in people.persons[A][:3]}
    codes = {c["code"] for c in view["columns"]}
    assert {"dtype", "level", "subsidy"}.isdisjoint(codes) and {"name", "id_number", "area"} <= codes
    for r in view["items"]:
        assert {"dtype", "level", "subsidy"}.isdisjoint(r["cells"])
        assert r["cells"]["name"].startswith("李") and len(r["cells"]["id_number"]) == 18
    assert (await ok(await client.get(f"{TASKS}/{task_b}", headers=service)))[
        "items"
    ] == []  # B: not its rows
    q = {"period": "2026-11", "states": ALL_STATES}
    agg = await ok(await client.get(f"{T}/{tid}/aggregate", params=q, headers=service))
    assert {it["township_code"] for it in agg["items"]} == {A + "000"} and len(agg["items"]) == 3
    # Row counts of other townships' tasks are counts of records it may not see.
    assert [t["township_code"] for t in agg["tasks"]] == [A + "000"]
    listed = await ok(await client.get(TASKS, headers=service))
    assert [t["id"] for t in listed["items"]] == [task_a]
    assert len((await ok(await client.get(TASKS, headers=world.dept)))["items"]) == 2
    assert all("dtype" not in it["cells"] for it in agg["items"])
    csv = (
        await client.get(f"{T}/{tid}/aggregate", params={**q, "format": "csv"}, headers=service)
    ).content.decode("utf-8-sig")
    assert "残疾类别" not in csv and "何埂镇" not in csv and "临江镇" in csv
    grid = _sheet(
        (await client.get(f"{T}/{tid}/aggregate", params={**q, "format": "xlsx"}, headers=service)).content
    )
    assert "残疾类别" not in grid[0] and len(grid) == 4
    body = await gql(client, service, AGG_Q, {"id": str(tid), "p": "2026-11", "s": ALL_STATES.split(",")})
    assert len(body["data"]["reportAggregate"]["items"]) == 3


async def test_item5_pull_only_live_read_is_cut_to_the_reader(client, world, people, narrowed, service):
    tid = await _approved(
        client,
        world,
        {
            "code": "dis_list",
            "name": "残疾人名单",
            "kind": "list",
            "ledger": "person",
            "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
            "columns": [
                {"kind": "field", "code": "name", "path": "name"},
                {"kind": "field", "code": "id_number", "path": "id_number"},
                {"kind": "field", "code": "dtype", "path": "disability.disability_type"},
            ],
        },
    )
    full = await ok(await client.get(f"{T}/{tid}/aggregate", headers=world.dept))
    assert full["source"] == "ledger_live" and len(full["items"]) == 5
    ids = {it["cells"]["id_number"] for it in full["items"]}
    mine = await ok(await client.get(f"{T}/{tid}/aggregate", headers=narrowed))
    assert len(mine["items"]) == 5 and not any(i in str(mine) for i in ids)
    assert all(
        it["cells"]["dtype"] == "****" and it["cells"]["name"].startswith("李") for it in mine["items"]
    )
    svc = await ok(await client.get(f"{T}/{tid}/aggregate", headers=service))
    assert {it["record_id"] for it in svc["items"]} == set(people.persons[A][:3])
    assert all("dtype" not in it["cells"] and len(it["cells"]["id_number"]) == 18 for it in svc["items"])


async def test_item5_aggregate_over_a_masked_field_is_withheld(client, world, people, narrowed):
    tid = await _approved(
        client,
        world,
        {
            "code": "dis_sum",
            "name": "补贴汇总",
            "kind": "aggregate",
            "ledger": "disability",
            "rows": {"by": "township"},
            "columns": [
                {"kind": "aggregate", "code": "n", "label": "人数", "fn": "count"},
                {
                    "kind": "aggregate",
                    "code": "total",
                    "label": "补贴合计",
                    "fn": "sum",
                    "path": "subsidy_amount",
                },
                {"kind": "formula", "code": "per", "label": "人均", "expr": "total / n"},
            ],
        },
    )
    full = await ok(await client.get(f"{T}/{tid}/aggregate", headers=world.dept))
    assert full["total"]["cells"]["total"] == 100 * (1 + 2 + 3 + 5 + 6)
    mine = await ok(await client.get(f"{T}/{tid}/aggregate", headers=narrowed))
    assert mine["total"]["cells"]["n"] == 5  # readable: appears
    assert mine["total"]["cells"]["total"] is None and mine["total"]["cells"]["per"] is None
    assert all(it["cells"]["total"] is None for it in mine["items"])
    cols = {c["code"]: c for c in mine["columns"]}
    assert cols["total"]["withheld"]["code"] == "access.field_masked"
    assert cols["per"]["withheld"]["code"] == "report.source_restricted" and "withheld" not in cols["n"]


# ---- item 6 -------------------------------------------------------------------------------------


async def test_item6_report_reads_of_plain_sensitive_values_are_audited(
    client, world, people, visit, session
):
    tid, task_a, _ = visit

    async def entries(path):
        return (await session.scalars(select(AuditEntry).where(AuditEntry.path == path))).all()

    await ok(await client.get(f"{TASKS}/{task_a}", headers=world.dept))
    [e] = await entries("report:task")
    assert e.action == "read_sensitive" and e.ledger == "person"
    assert set(e.record_ids) == set(people.persons[A][:3]) and "id_number" in e.fields
    assert "disability.disability_type" in e.fields and e.detail["task_id"] == task_a
    assert e.actor.endswith(":cl")

    await client.get(f"{TASKS}/{task_a}/xlsx", headers=world.dept)
    [x] = await entries("report:task_xlsx")
    assert set(x.record_ids) == set(people.persons[A][:3]) and "id_number" in x.fields

    await client.get(
        f"{T}/{tid}/aggregate", params={"period": "2026-11", "states": ALL_STATES}, headers=world.dept
    )
    [g] = await entries("report:aggregate")
    assert set(g.record_ids) == {p for ps in people.persons.values() for p in ps} - {people.persons[A][3]}
    assert "id_number" in g.fields

    body = await gql(client, world.dept, AGG_Q, {"id": str(tid), "p": "2026-11", "s": ALL_STATES.split(",")})
    assert body["data"]["reportAggregate"]
    assert len(await entries("graphql:report")) == 1

    # Township A reads its task too: its own plain sensitive values are audited under its own name.
    await ok(await client.get(f"{TASKS}/{task_a}", headers=world.a))
    assert {a.actor.rsplit(":", 1)[1] for a in await entries("report:task")} == {"cl", "ta"}


async def test_item6_masked_reads_are_not_logged(client, world, people, visit, session, village):
    _, task_a, _ = visit
    await ok(await client.get(f"{TASKS}/{task_a}", headers=village))
    [e] = (await session.scalars(select(AuditEntry).where(AuditEntry.path == "report:task"))).all()
    # The village reads ID numbers in plain (its grant) but the disability type only masked.
    assert "id_number" in e.fields and "disability.disability_type" not in e.fields
    assert set(e.record_ids) == set(people.persons[A][:2])


async def test_item5_template_analysis_counts_are_cut_to_the_reader(client, world, people, visit, service):
    tid, _, _ = visit
    full = await ok(await client.get(f"{T}/{tid}", headers=world.dept))
    assert {t["township_code"]: t["rows"] for t in full["analysis"]["townships"]} == {
        A + "000": 3,
        "500118102000": 2,
    }
    mine = await ok(await client.get(f"{T}/{tid}", headers=service))
    assert [(t["township_code"], t["rows"]) for t in mine["analysis"]["townships"]] == [(A + "000", 3)]
    assert mine["analysis"]["typed_cells_total"] == 9
    live = await ok(await client.get(f"{T}/{tid}/analysis", headers=service))
    assert [(t["township_code"], t["rows"]) for t in live["townships"]] == [(A + "000", 3)]


async def test_item5_live_aggregate_counts_only_the_readers_rows(client, world, people, service):
    tid = await _approved(
        client,
        world,
        {
            "code": "by_sex",
            "name": "分性别人数",
            "kind": "aggregate",
            "ledger": "person",
            "rows": {"by": "code", "path": "sex"},
            "columns": [{"kind": "aggregate", "code": "n", "label": "人数", "fn": "count"}],
        },
    )
    full = await ok(await client.get(f"{T}/{tid}/aggregate", headers=world.dept))
    assert {it["key"]: it["cells"]["n"] for it in full["items"] if it["key"] in "12"} == {"1": 3, "2": 3}
    mine = await ok(await client.get(f"{T}/{tid}/aggregate", headers=service))  # township A only
    assert {it["key"]: it["cells"]["n"] for it in mine["items"] if it["key"] in "12"} == {"1": 2, "2": 2}
    assert mine["total"]["cells"]["n"] == 4


async def test_item7_task_provenance_does_not_tell_which_masked_cells_hold_a_value(
    client, world, people, narrowed
):
    """A cell masked `full` shows **** whether or not there is a value; its provenance must not tell
    either (an entry where the record has a value, null where it has none)."""
    number = make_id_card("500118", date(1971, 6, 9), 77, "1")
    p = await ok(
        await client.post(
            "/api/v1/ledgers/person/records",
            headers=world.a,
            json={"region_code": VILLAGE_A, "name": "李七", "id_number": number, "is_disabled": True},
        ),
        201,
    )
    await ok(
        await client.post(
            "/api/v1/ledgers/disability/records",
            headers=world.a,
            json={
                "parent_id": p["id"],
                "certificate_number": number + "11",
                "disability_type": "1",
                "disability_level": "1",
            },
        ),
        201,
    )  # no subsidy_amount
    tid = await _approved(client, world, VISIT)
    d = await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-11"}, headers=world.dept))
    task_a = next(t["id"] for t in d["tasks"] if t["township_code"] == A + "000")

    dept = await ok(await client.get(f"{TASKS}/{task_a}", headers=world.dept))
    seen = {r["record"]["id"]: r["provenance"].get("subsidy") for r in dept["items"]}
    assert seen[p["id"]] is None and all(v for k, v in seen.items() if k != p["id"])  # the department: told

    view = await ok(await client.get(f"{TASKS}/{task_a}", headers=narrowed))
    assert len(view["items"]) == 4
    for r in view["items"]:
        assert r["cells"]["subsidy"] == "****"
        assert "subsidy" not in r["provenance"]  # masked `full` for this reader: no provenance either
        assert r["provenance"].get("name")  # readable cells keep theirs
