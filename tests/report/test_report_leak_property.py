"""Property, two-sided, on the report paths: whoever reads a report — a narrowed user or a service account
of the owning department, a township user of the task's township, a village user — never gets a plain
value it may not read through REST, and gets what it may (plain, or masked where it reads masked).

The 残联 department defines a list template over person and disability fields; it is approved and
dispatched to both townships once. Each example gives the reader random grants by name (per field:
hidden / masked / read, random row scope) and reads: the task view (GET task), the task XLSX, the
aggregate as JSON / CSV / XLSX, GraphQL `reportAggregate` and `reportTasks`. The oracle is
tests/leak_oracle.py (docs/access.md, not the policy under test); the department itself reads
everything in plain, so every masked or missing value is the reader's own policy at work.

Issue 8 item 5: on the code this was written against, report paths read with the department's rights,
so this property fails (a narrowed reader sees plain values it reads masked through REST).
"""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from python_calamine import CalamineWorkbook

from app.access.models import Grant
from tests.factories import (
    api_key_headers,
    auth_headers,
    make_org_unit,
    make_service_account,
    make_user,
)
from tests.leak_oracle import Caller, G, at_least_read, expected, in_scope, level_of
from tests.profile import examples, tally
from tests.report.conftest import post
from tests.world import VILLAGE_A, A, B

pytestmark = pytest.mark.property

T = "/api/v1/report-templates"
TASKS = "/api/v1/report-tasks"
PERIOD = "2026-11"
ALL_STATES = ["dispatched", "in_progress", "submitted", "returned", "approved"]
# column code -> (ledger, field): what each pulled column reads.
COLUMNS = {
    "name": ("person", "name"),
    "id_number": ("person", "id_number"),
    "phone": ("person", "phone"),
    "birth": ("person", "birth_date"),
    "cert": ("disability", "certificate_number"),
    "dtype": ("disability", "disability_type"),
    "subsidy": ("disability", "subsidy_amount"),
}
TEMPLATE = {
    "code": "leak_probe",
    "name": "残疾人信息核对表",
    "kind": "list",
    "ledger": "person",
    "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
    "columns": [
        *(
            {"kind": "field", "code": code, "path": f if ledger == "person" else f"{ledger}.{f}"}
            for code, (ledger, f) in COLUMNS.items()
        ),
        {"kind": "gap", "code": "checked", "label": "是否已核对", "type": "boolean"},
    ],
}
# Text values long and distinctive enough to search for in any output; codes and amounts are checked
# cell by cell instead.
SEARCHABLE = {"name", "id_number", "phone", "birth", "cert"}
SCOPES = {
    "own": ("own", []),
    "all": ("all", []),
    "a": ("regions", [A + "000"]),
    "b": ("regions", [B + "000"]),
}
PERSON_FIELDS = ["*", "name", "id_number", "phone", "birth_date", "is_disabled"]
DISABILITY_FIELDS = ["*", "certificate_number", "disability_type", "subsidy_amount"]
HOME = {"dept_user": "500118", "dept_service": "500118", "township_user": A, "village_user": VILLAGE_A}

levels = st.sampled_from(["hidden", "masked", "read"])
reads = st.lists(
    st.one_of(
        st.tuples(st.just("task"), st.sampled_from("AB")),
        st.tuples(st.just("task_xlsx"), st.sampled_from("AB")),
        st.tuples(st.just("aggregate"), st.sampled_from(["json", "csv", "xlsx"])),
        st.tuples(st.just("gql_aggregate"), st.just("")),
        st.tuples(st.just("gql_tasks"), st.just("")),
    ),
    min_size=1,
    max_size=4,
)


def plain(value: object) -> object:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


async def _setup(client, world, people, session, settings) -> dict:
    """Template approved and dispatched once; readers made once; the plain values each row holds."""
    tpl = await post(client, T, world.dept, TEMPLATE)
    await post(client, f"{T}/{tpl['id']}/submit", world.dept, {}, status=200)
    await post(client, f"{T}/{tpl['id']}/approve", world.admin, {}, status=200)
    d = await post(client, f"{T}/{tpl['id']}/dispatch", world.dept, {"period": PERIOD}, status=200)
    tasks = {t["township_code"][:9]: t["id"] for t in d["tasks"]}
    # Ground truth, read by each township (write on its own ledgers: everything in plain).
    rows: dict[str, dict] = {}
    for township, headers in ((A, world.a), (B, world.b)):
        for pid in people.persons.get(township, []):
            if pid not in people.disability:
                continue
            p = (await client.get(f"/api/v1/ledgers/person/records/{pid}", headers=headers)).json()
            dis = (
                await client.get(
                    f"/api/v1/ledgers/disability/records/{people.disability[pid]}", headers=headers
                )
            ).json()
            src = {"person": p, "disability": dis}
            rows[str(pid)] = {
                "region_code": p["region_code"],
                "township": township,
                "values": {c: src[lg][f] for c, (lg, f) in COLUMNS.items()},
            }
    assert len(rows) == 5 and sorted(tasks) == [A, B]
    dept_unit = world.dept_unit
    village = await make_org_unit(
        session, code=VILLAGE_A, name="临江村", kind="village", region_code=VILLAGE_A
    )
    units = {
        "dept_user": dept_unit,
        "township_user": await _unit(session, A + "000"),
        "village_user": village,
    }
    readers = {}
    for kind, unit in units.items():
        for roles in ([], ["township_admin"]) if kind == "township_user" else ([],):
            user = await make_user(
                session,
                username=f"leak-{kind}-{len(roles)}",
                org_unit=unit,
                roles=roles or (["dept_staff"] if kind == "dept_user" else []),
            )
            readers[(kind, bool(roles))] = ("user", user.id, auth_headers(settings, user))
    account, key = await make_service_account(session, dept_unit, name="cl-report-svc")
    readers[("dept_service", False)] = ("service_account", account.id, api_key_headers(key))
    return {"template": tpl["id"], "tasks": tasks, "rows": rows, "readers": readers}


async def _unit(session, code):
    from sqlalchemy import select

    from app.org.models import OrgUnit

    return (await session.scalars(select(OrgUnit).where(OrgUnit.code == code))).one()


def caller_of(kind: str, admin: bool, named: dict[str, dict[str, str]], scope: str) -> Caller:
    home = HOME[kind]
    prefix = {"own": (home,), "all": ("",), "a": (A,), "b": (B,)}[scope]
    grants: list[G] = []
    if kind in ("dept_user", "dept_service"):  # the department's own grants (tests/report/conftest.py)
        grants += [G("org_unit", lg, "*", "read", ("500118",)) for lg in ("person", "disability", "house")]
    if admin:  # the township_admin role grant of tests/world.py
        grants.append(G("role", "*", "*", "write", (home,)))
    grants += [
        G("named", lg, f, level, prefix) for lg, fields in named.items() for f, level in fields.items()
    ]
    return Caller("service_account" if kind == "dept_service" else "user", home, grants)


def restricted(caller: Caller) -> bool:
    """The template's own filter (is_disabled) decides which rows exist: a reader who may not filter by
    it (masked without lookup, or hidden) may not read the report at all, or the rows would tell it."""
    return not at_least_read(level_of(caller, "person", "is_disabled"))


def status_of(kind: str, read: tuple[str, str], caller: Caller) -> set[int]:
    """Who may open what: the department everything of its template; a township its own task only."""
    what, arg = read
    department = kind in ("dept_user", "dept_service")
    refused = {403} if restricted(caller) else {200}
    if what in ("task", "task_xlsx"):
        if department:
            return refused
        if arg == "B":
            return {404}
        # Village staff: the township fills; a village sees its own rows or nothing (item 4).
        return refused if kind == "township_user" else refused | {404}
    if what == "gql_tasks":
        return {200}
    return refused if department else {404}


def forbidden_of(caller: Caller, rows: dict) -> list[str]:
    """Plain text values the reader may not read through REST, unless a value it may read contains them
    (a certificate number it reads in plain embeds the ID number: the REST answer holds it too)."""
    allowed, denied = [], []
    for row in rows.values():
        for code in SEARCHABLE:
            value = str(row["values"][code])
            (allowed if readable_cell(caller, row, code) else denied).append(value)
    return [v for v in denied if not any(v in a for a in allowed)]


def readable_cell(caller: Caller, row: dict, code: str) -> bool:
    ledger, f = COLUMNS[code]
    return in_scope(caller, ledger, row["region_code"]) and at_least_read(level_of(caller, ledger, f))


def check_items(caller: Caller, items: list[dict], rows: dict, townships: set[str], where: str) -> None:
    """Structured output (task view, aggregate JSON): every row the reader may see is there, each cell
    plain where it reads, masked where it reads masked, and never the plain value otherwise."""
    by_key = {str(it["key"]): it["cells"] for it in items}
    for key, row in rows.items():
        if key not in by_key:
            assert row["township"] not in townships or not in_scope(caller, "person", row["region_code"]), (
                where,
                "row missing",
                key,
            )
            continue
        cells = by_key[key]
        for code, (ledger, f) in COLUMNS.items():
            value, got = row["values"][code], cells.get(code)
            if not in_scope(caller, ledger, row["region_code"]):
                assert plain(got) != plain(value) or value is None, (where, key, code, "row out of scope")
                continue
            level, want = expected(caller, ledger, f, value)
            if at_least_read(level):
                assert plain(got) == plain(want), (where, key, code, level, got, want)
            else:
                assert plain(got) != plain(value), (where, key, code, level, got)
                if level == "masked" and code in SEARCHABLE:
                    assert got == want, (where, key, code, level, got, want)


def check_text(caller: Caller, text: str, rows: dict, townships: set[str], where: str) -> None:
    """Flat output (CSV, XLSX): the plain or masked text of every cell the reader may see appears."""
    for row in rows.values():
        if row["township"] not in townships or not in_scope(caller, "person", row["region_code"]):
            continue
        for code in SEARCHABLE:
            ledger, f = COLUMNS[code]
            if in_scope(caller, ledger, row["region_code"]):
                level, want = expected(caller, ledger, f, row["values"][code])
                if level != "hidden" and want is not None:
                    assert str(want) in text, (where, code, level, want)


def xlsx_text(content: bytes) -> str:
    wb = CalamineWorkbook.from_filelike(io.BytesIO(content))
    cells = []
    for name in wb.sheet_names:
        for line in wb.get_sheet_by_name(name).to_python():
            cells += [v.isoformat() if hasattr(v, "isoformat") else str(v) for v in line]
    return "\t".join(cells)


named_grants = st.fixed_dictionaries(
    {
        "person": st.fixed_dictionaries({}, optional=dict.fromkeys(PERSON_FIELDS, levels)),
        "disability": st.fixed_dictionaries({}, optional=dict.fromkeys(DISABILITY_FIELDS, levels)),
    }
)


@settings(
    max_examples=examples(150, 4000),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["dept_user", "dept_service", "township_user", "village_user"]),
    admin=st.booleans(),
    named=named_grants,
    scope=st.sampled_from(list(SCOPES)),
    reads=reads,
)
async def test_report_readers_get_no_more_and_no_less_than_rest(
    client, world, people, session, settings, connection, kind, admin, named, scope, reads
):
    tally("reports")
    if not hasattr(world, "report_probe"):
        world.dept_unit = await _unit(session, "dept:cl")
        world.report_probe = await _setup(client, world, people, session, settings)
    probe = world.report_probe
    admin = admin and kind == "township_user"
    principal_kind, principal_id, headers = probe["readers"][(kind, admin)]
    rows = probe["rows"]
    async with connection.begin_nested() as sp:
        row_scope, regions = SCOPES[scope]
        who = {"user_id": principal_id} if principal_kind == "user" else {"service_account_id": principal_id}
        for ledger, fields in named.items():
            for fld, level in fields.items():
                await connection.execute(
                    Grant.__table__.insert().values(
                        grantee_type=principal_kind,
                        ledger=ledger,
                        field=fld,
                        level=level,
                        allow_lookup=False,
                        row_scope=row_scope,
                        regions=regions,
                        created_by="test",
                        **who,
                    )
                )
        caller = caller_of(kind, admin, named, scope)
        forbidden = forbidden_of(caller, rows)
        tid = probe["template"]
        for read in reads:
            what, arg = read
            if what in ("task", "task_xlsx"):
                suffix = "/xlsx" if what == "task_xlsx" else ""
                r = await client.get(
                    f"{TASKS}/{probe['tasks'][A if arg == 'A' else B]}{suffix}", headers=headers
                )
            elif what == "aggregate":
                r = await client.get(
                    f"{T}/{tid}/aggregate",
                    headers=headers,
                    params={"period": PERIOD, "states": ",".join(ALL_STATES), "format": arg},
                )
            elif what == "gql_aggregate":
                r = await client.post(
                    "/graphql",
                    headers=headers,
                    json={
                        "query": "query($id: ID!, $p: String, $s: [String!]) "
                        "{ reportAggregate(templateId: $id, period: $p, states: $s) }",
                        "variables": {"id": str(tid), "p": PERIOD, "s": ALL_STATES},
                    },
                )
            else:
                r = await client.post("/graphql", headers=headers, json={"query": "{ reportTasks }"})
            is_xlsx = r.status_code == 200 and (
                what == "task_xlsx" or (what == "aggregate" and arg == "xlsx")
            )
            text = xlsx_text(r.content) if is_xlsx else r.text
            blob = text + " ".join(f"{k}:{v}" for k, v in r.headers.items())
            for secret in forbidden:
                assert secret not in blob, (read, kind, r.status_code, "leaks", secret)
            assert r.status_code in status_of(kind, read, caller) or what.startswith("gql"), (
                read,
                kind,
                r.status_code,
                r.text[:300],
            )
            if r.status_code != 200:
                continue
            townships = {A if arg == "A" else B} if what.startswith("task") else {A, B}
            if what == "task":
                check_items(caller, r.json()["items"], rows, townships, "task")
            elif what == "aggregate" and arg == "json":
                check_items(caller, r.json()["items"], rows, townships, "aggregate")
            elif what == "gql_aggregate":
                body = r.json()
                department = kind in ("dept_user", "dept_service")
                if department and not restricted(caller):
                    assert (body.get("data") or {}).get("reportAggregate") is not None, body
                    check_items(caller, body["data"]["reportAggregate"]["items"], rows, townships, "graphql")
                else:
                    problem = "report.reader_restricted" if department else "record.not_found"
                    assert body["errors"][0]["extensions"]["problem"] == problem, body
            elif what != "gql_tasks":
                check_text(caller, text, rows, townships, f"{what}:{arg}")
            else:
                json.loads(r.text)  # a task list carries no row values: the leak search above is the check
        await sp.rollback()
