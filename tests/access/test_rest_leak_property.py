"""Property: whatever grants a principal holds and whatever it asks, no value it may not read leaks.

Random grant sets (per field: hidden / masked / read, with random row scopes) are given to a
department user; random requests (lists with filters and sorts, gets, history, related records,
writes that provoke conflicts and validation errors) are sent; every response body and header is
searched for each seeded value the principal may not read in plain. The expected level comes from a
small oracle written here, not from the policy under test.
"""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.access.models import Grant
from app.catalog.loader import get_catalog
from app.catalog.validators import make_id_card
from tests.world import VILLAGE_A, VILLAGE_B

EXAMPLES = 300
PERSON = get_catalog().ledger("person")
FIELDS = ["name", "id_number", "phone", "hukou_address", "residence_address", "birth_date", "low_income_status"]
DEFAULT = {"public": "read", "internal": "read", "sensitive": "masked", "secret": "hidden"}
PERSONS = "/api/v1/ledgers/person/records"


def seeded(i: int, region: str) -> dict:
    # Distinctive values: none is a substring of another's mask or of any fixed text.
    return {
        "region_code": region, "name": f"密{'甲乙丙丁'[i]}{'子丑寅卯'[i]}卫",
        "id_number": make_id_card("500118", date(1961 + i, 2, 3 + i), 300 + i * 2, "1"),
        "phone": f"1597{i}{i}2468{i}{7 - i}"[:11],
        "hukou_address": f"重庆市永川区秘{i}镇隐{i}村藏{i}组{97 + i}号",
        "residence_address": f"重庆市永川区幽{i}街道暗{i}社区{41 + i}栋",
        "birth_date": date(1961 + i, 2, 3 + i).isoformat(),
        "low_income_status": "3",
    }


def oracle(field: str, grants: dict[str, str]) -> str:
    return grants.get(field) or grants.get("*") or DEFAULT[PERSON.field(field).sensitivity.value]


def secrets_of(rec: dict, field: str) -> list[str]:
    value = str(rec[field])
    if field == "birth_date":
        return [value]  # masked to the year; the full date must not appear
    if field == "low_income_status":
        return []  # one-character codes can't be searched for meaningfully
    return [value]


grant_sets = st.fixed_dictionaries(
    {},
    optional={f: st.sampled_from(["hidden", "masked", "read"]) for f in ["*", *FIELDS]},
)
scopes = st.sampled_from(["own", "all", "a", "b"])
requests = st.lists(
    st.one_of(
        st.tuples(st.just("list"), st.sampled_from([None, *FIELDS]), st.sampled_from([None, *FIELDS])),
        st.tuples(st.just("get"), st.integers(0, 3)),
        st.tuples(st.just("history"), st.integers(0, 3)),
        st.tuples(st.just("dup"), st.integers(0, 3)),
        st.tuples(st.just("bad"), st.sampled_from(FIELDS)),
    ),
    min_size=1, max_size=5,
)


async def _seed(client, world) -> list[dict]:
    out = []
    for i, region in enumerate([VILLAGE_A, VILLAGE_A, VILLAGE_B, VILLAGE_B]):
        body = seeded(i, region)
        headers = world.a if region == VILLAGE_A else world.b
        r = await client.post(PERSONS, json=body, headers=headers)
        assert r.status_code == 201, r.text
        # Change the phone once so history holds an old and a new value.
        rec = r.json()
        r = await client.patch(f"{PERSONS}/{rec['id']}", json={"phone": body["phone"][:-1] + "0"},
                               headers={**headers, "If-Match": 'W/"1"'})
        assert r.status_code == 200, r.text
        out.append({**body, "id": rec["id"], "old_phone": body["phone"], "phone": body["phone"][:-1] + "0"})
    return out


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(grants=grant_sets, scope=scopes, reqs=requests)
async def test_no_unreadable_value_ever_leaves_the_service(client, world, connection, grants, scope, reqs):
    # Fixtures live for the whole test (all examples): seed once, give each example its own savepoint.
    if not hasattr(world, "seeded"):
        world.seeded = await _seed(client, world)
    records = world.seeded
    async with connection.begin_nested() as sp:
        user = world.users["cl"]
        row_scope, regions = {"own": ("own", []), "all": ("all", []), "a": ("regions", ["500118101000"]),
                              "b": ("regions", ["500118102000"])}[scope]
        for fld, level in grants.items():
            await connection.execute(Grant.__table__.insert().values(
                grantee_type="user", user_id=user.id, ledger="person", field=fld, level=level,
                allow_lookup=False, row_scope=row_scope, regions=regions, created_by="test"))

        def visible(rec) -> bool:
            if not grants:
                return True  # no grant: the department's own jurisdiction, the whole district
            if all(v == "hidden" for v in grants.values()):
                return True  # default scope (own subtree) applies when no grant gives access
            return scope in ("own", "all") or (scope == "a") == (rec["region_code"] == VILLAGE_A)

        forbidden: list[str] = []
        for rec in records:
            for fld in FIELDS:
                level = oracle(fld, grants)
                if not visible(rec) or level in ("hidden", "masked"):
                    forbidden += secrets_of(rec, fld)
            if not visible(rec) or oracle("phone", grants) != "read":
                forbidden.append(rec["old_phone"])

        responses = []
        for req in reqs:
            if req[0] == "list":
                params = {}
                if req[1]:
                    params[req[1]] = f"eq.{records[0][req[1]]}"
                if req[2]:
                    params["order"] = f"{req[2]}.desc"
                responses.append(await client.get(PERSONS, params=params, headers=world.dept))
            elif req[0] in ("get", "history"):
                suffix = "/history" if req[0] == "history" else ""
                responses.append(await client.get(f"{PERSONS}/{records[req[1]]['id']}{suffix}", headers=world.dept))
            elif req[0] == "dup":
                body = {k: v for k, v in records[req[1]].items() if k in FIELDS or k == "region_code"}
                responses.append(await client.post(PERSONS, json=body, headers=world.dept))
            else:
                target = records[0]
                responses.append(await client.patch(f"{PERSONS}/{target['id']}", json={req[1]: "坏值" + target[req[1]]},
                                                    headers={**world.dept, "If-Match": 'W/"2"'}))
        for r in responses:
            blob = r.text + " ".join(f"{k}:{v}" for k, v in r.headers.items())
            for secret in forbidden:
                assert secret not in blob, (r.request.method, str(r.request.url), r.status_code)
        await sp.rollback()
