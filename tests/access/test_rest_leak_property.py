"""Property, two-sided: whatever grants a principal holds and whatever it asks, no value it may not read
leaves the service, every value it may read arrives (plain or in its masked form), and the status says
what the caller may do.

Random grant sets (per field: hidden / masked / read, with random row scopes) are given to a
department user or a service account of the department, by name and to the department itself; random
requests (lists with filters and sorts, gets, history, writes that provoke conflicts and validation
errors) are sent. Every response body and header is searched for each seeded value the principal may
not read in plain, and every record returned is compared field by field with what the oracle
(tests/leak_oracle.py, written from docs/access.md, not from the policy under test) says it should be.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from app.access.models import Grant
from app.catalog.validators import make_id_card
from app.org.models import OrgUnit
from tests.factories import api_key_headers, make_service_account
from tests.leak_oracle import Caller, G, at_least_read, expected, in_scope, level_of
from tests.profile import examples, tally
from tests.world import VILLAGE_A, VILLAGE_B

pytestmark = pytest.mark.property

FIELDS = [
    "name",
    "id_number",
    "phone",
    "hukou_address",
    "residence_address",
    "birth_date",
    "low_income_status",
]
PERSONS = "/api/v1/ledgers/person/records"
SCOPES = {
    "own": ("own", []),
    "all": ("all", []),
    "a": ("regions", ["500118101000"]),
    "b": ("regions", ["500118102000"]),
}
PREFIX = {"all": ("",), "a": ("500118101",), "b": ("500118102",)}
DISTRICT = "500118"  # the department's own subtree


def seeded(i: int, region: str) -> dict:
    # Distinctive values: none is a substring of another's mask or of any fixed text.
    rec = {
        "region_code": region,
        "name": f"密{'甲乙丙丁'[i]}{'子丑寅卯'[i]}卫",
        "id_number": make_id_card("500118", date(1961 + i, 2, 3 + i), 300 + i * 2, "1"),
        "phone": f"1597{i}{i}2468{i}{7 - i}"[:11],
        "hukou_address": f"重庆市永川区秘{i}镇隐{i}村藏{i}组{97 + i}号",
        "residence_address": f"重庆市永川区幽{i}街道暗{i}社区{41 + i}栋",
        "birth_date": date(1961 + i, 2, 3 + i).isoformat(),
        "low_income_status": "3",
    }
    if i == 3:  # a masked NULL must not tell "no value" from "a value" where the mask shows nothing
        rec["residence_address"] = None
        rec["low_income_status"] = None
    return rec


def secrets_of(rec: dict, field: str) -> list[str]:
    if field == "low_income_status" or rec[field] is None:
        return []  # one-character codes can't be searched for meaningfully
    return [str(rec[field])]  # birth_date: masked to the year; the full date must not appear


grant_sets = st.fixed_dictionaries(
    {},
    optional={f: st.sampled_from(["hidden", "masked", "read"]) for f in ["*", *FIELDS]},
)
scopes = st.sampled_from(list(SCOPES))
requests = st.lists(
    st.one_of(
        st.tuples(st.just("list"), st.sampled_from([None, *FIELDS]), st.sampled_from([None, *FIELDS])),
        st.tuples(st.just("get"), st.integers(0, 3)),
        st.tuples(st.just("history"), st.integers(0, 3)),
        st.tuples(st.just("dup"), st.integers(0, 3)),
        st.tuples(st.just("bad"), st.sampled_from(FIELDS)),
    ),
    min_size=1,
    max_size=5,
)


async def _seed(client, world, session) -> list[dict]:
    out = []
    for i, region in enumerate([VILLAGE_A, VILLAGE_A, VILLAGE_B, VILLAGE_B]):
        body = seeded(i, region)
        headers = world.a if region == VILLAGE_A else world.b
        r = await client.post(PERSONS, json={k: v for k, v in body.items() if v is not None}, headers=headers)
        assert r.status_code == 201, r.text
        # Change the phone once so history holds an old and a new value.
        rec = r.json()
        r = await client.patch(
            f"{PERSONS}/{rec['id']}",
            json={"phone": body["phone"][:-1] + "9"},
            headers={**headers, "If-Match": 'W/"1"'},
        )
        assert r.status_code == 200, r.text
        out.append({**body, "id": rec["id"], "old_phone": body["phone"], "phone": body["phone"][:-1] + "9"})
    unit = (await session.scalars(select(OrgUnit).where(OrgUnit.code == "dept:cl"))).one()
    account, key = await make_service_account(session, unit, name="cl-leak-svc")
    world.leak_service = (unit, account, api_key_headers(key))
    return out


def _caller(kind: str, named: dict, named_scope: str, unit_grants: dict, unit_scope: str) -> Caller:
    def grants(who, fields, scope):
        return [G(who, "person", f, lvl, PREFIX.get(scope, (DISTRICT,))) for f, lvl in fields.items()]

    return Caller(
        kind, DISTRICT, grants("org_unit", unit_grants, unit_scope) + grants("named", named, named_scope)
    )


def check_record(caller: Caller, item: dict, rec: dict) -> None:
    """Every field of a returned record is what the oracle says: absent, masked or plain."""
    for fld in FIELDS:
        level, want = expected(caller, "person", fld, rec[fld])
        if level == "hidden":
            assert fld not in item, (fld, level)
        else:
            assert item.get(fld) == want, (fld, level, item.get(fld), want)


def list_status(caller: Caller, filt: str | None, order: str | None) -> int:
    asked = [f for f in (filt, order) if f]
    return 200 if all(at_least_read(level_of(caller, "person", f)) for f in asked) else 403


@settings(
    max_examples=examples(300, 5500),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["user", "service_account"]),
    named=grant_sets,
    scope=scopes,
    unit_grants=grant_sets,
    unit_scope=scopes,
    reqs=requests,
)
async def test_no_unreadable_value_ever_leaves_the_service(
    client, world, session, connection, kind, named, scope, unit_grants, unit_scope, reqs
):
    tally("rest")
    # Fixtures live for the whole test (all examples): seed once, give each example its own savepoint.
    if not hasattr(world, "seeded"):
        world.seeded = await _seed(client, world, session)
    records = world.seeded
    unit, account, svc_headers = world.leak_service
    async with connection.begin_nested() as sp:
        user = world.users["cl"]
        named_to = {"user_id": user.id} if kind == "user" else {"service_account_id": account.id}
        for grantee, fields, sc, ids in (
            ("org_unit", unit_grants, unit_scope, {"org_unit_id": unit.id}),
            (kind, named, scope, named_to),
        ):
            row_scope, regions = SCOPES[sc]
            for fld, level in fields.items():
                await connection.execute(
                    Grant.__table__.insert().values(
                        grantee_type=grantee,
                        ledger="person",
                        field=fld,
                        level=level,
                        allow_lookup=False,
                        row_scope=row_scope,
                        regions=regions,
                        created_by="test",
                        **ids,
                    )
                )
        caller = _caller(kind, named, scope, unit_grants, unit_scope)
        headers = world.dept if kind == "user" else svc_headers

        def visible(rec) -> bool:
            return in_scope(caller, "person", rec["region_code"])

        forbidden: list[str] = []
        for rec in records:
            for fld in FIELDS:
                if not visible(rec) or not at_least_read(level_of(caller, "person", fld)):
                    forbidden += secrets_of(rec, fld)
            if not visible(rec) or not at_least_read(level_of(caller, "person", "phone")):
                forbidden.append(rec["old_phone"])

        for req in reqs:
            if req[0] == "list":
                params = {}
                if req[1]:
                    params[req[1]] = f"eq.{records[0][req[1]]}"
                if req[2]:
                    params["order"] = f"{req[2]}.desc"
                r = await client.get(PERSONS, params=params, headers=headers)
                assert r.status_code == list_status(caller, req[1], req[2]), (params, r.text)
                if r.status_code == 200:
                    # Exactly the rows in scope that match the filter, each as the oracle says.
                    want = [
                        rec
                        for rec in records
                        if visible(rec) and (not req[1] or rec[req[1]] == records[0][req[1]])
                    ]
                    got = {item["id"]: item for item in r.json()["items"]}
                    assert sorted(got) == sorted(rec["id"] for rec in want), params
                    for rec in want:
                        check_record(caller, got[rec["id"]], rec)
            elif req[0] == "get":
                rec = records[req[1]]
                r = await client.get(f"{PERSONS}/{rec['id']}", headers=headers)
                assert r.status_code == (200 if visible(rec) else 404), r.text
                if r.status_code == 200:
                    check_record(caller, r.json(), rec)
            elif req[0] == "history":
                rec = records[req[1]]
                r = await client.get(f"{PERSONS}/{rec['id']}/history", headers=headers)
                assert r.status_code == (200 if visible(rec) else 404), r.text
                if r.status_code == 200:
                    level, old = expected(caller, "person", "phone", rec["old_phone"])
                    phones = [e for e in r.json()["items"] if e["field"] == "phone"]
                    if level == "hidden":
                        assert phones == []
                    else:
                        # The old number as it was before the change: plain or masked like the field.
                        assert old in [e["before"] for e in phones], (level, old, phones)
            elif req[0] == "dup":
                body = {
                    k: v
                    for k, v in records[req[1]].items()
                    if (k in FIELDS or k == "region_code") and v is not None
                }
                r = await client.post(PERSONS, json=body, headers=headers)
                assert r.status_code == 403, r.text  # nobody here holds write
            else:
                target = records[0]
                r = await client.patch(
                    f"{PERSONS}/{target['id']}",
                    json={req[1]: "坏值" + target[req[1]]},
                    headers={**headers, "If-Match": 'W/"2"'},
                )
                assert r.status_code == 403, r.text  # write is checked before the row, the value, the version
            blob = r.text + " ".join(f"{k}:{v}" for k, v in r.headers.items())
            for secret in forbidden:
                assert secret not in blob, (r.request.method, str(r.request.url), r.status_code)
        await sp.rollback()
