"""Property: whatever grants a caller holds and whatever it selects through GraphQL (nested relations
both ways, filters, orders, aggregates, cursors), no value it may not read in plain leaves the service.

The GraphQL twin of tests/access/test_leak_property.py: random grant sets for a department user on
the person and house ledgers, random selections over the seeded district (which has a person of
township A living in a house of township B), every response searched for each seeded value the caller
may not read. The expected level comes from a small oracle here, not from the policy under test.
"""

from __future__ import annotations

import base64
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.access.models import Grant
from app.catalog.loader import get_catalog
from app.graphql.spec import camel
from tests.world import VILLAGE_A

EXAMPLES = 150
DEFAULT = {"public": "read", "internal": "read", "sensitive": "masked", "secret": "hidden"}
P_FIELDS = ["name", "id_number", "phone", "hukou_address", "birth_date", "sex"]
H_FIELDS = ["house_code", "standard_address", "owner_name", "owner_id_number", "floor_area"]
SEARCHED = {"person": ["name", "id_number", "phone", "hukou_address", "birth_date"],
            "house": ["house_code", "standard_address", "owner_name", "owner_id_number"]}


def oracle(ledger: str, field: str, grants: dict[str, str]) -> str:
    sensitivity = get_catalog().ledger(ledger).field(field).sensitivity.value
    return grants.get(field) or grants.get("*") or DEFAULT[sensitivity]


def visible(region: str, grants: dict[str, str], scope: str) -> bool:
    if not grants or all(v == "hidden" for v in grants.values()):
        return True  # default: the department's own jurisdiction, the whole district
    return scope in ("own", "all") or (scope == "a") == region.startswith(VILLAGE_A[:9])


levels = st.sampled_from(["hidden", "masked", "read"])
person_grants = st.fixed_dictionaries({}, optional={f: levels for f in ["*", *P_FIELDS]})
house_grants = st.fixed_dictionaries({}, optional={f: levels for f in ["*", *H_FIELDS]})
selection = st.fixed_dictionaries({
    "root": st.sampled_from(["persons", "houses", "person", "personAggregate", "houseAggregate"]),
    "pf": st.lists(st.sampled_from(P_FIELDS), min_size=1, max_size=4, unique=True),
    "hf": st.lists(st.sampled_from(H_FIELDS), min_size=1, max_size=3, unique=True),
    "filter": st.one_of(st.none(), st.sampled_from(P_FIELDS + H_FIELDS)),
    "order": st.one_of(st.none(), st.sampled_from(P_FIELDS + H_FIELDS)),
    "target": st.integers(0, 6),
})


def build(sel: dict, seed) -> tuple[str, dict]:
    labels = [f"pa{i}" for i in range(6)] + ["pb0"]
    target = seed.rows[labels[sel["target"]]]
    pf = " ".join(camel(f) for f in sel["pf"])
    hf = " ".join(camel(f) for f in sel["hf"])
    ledger = "house" if sel["root"].startswith("house") else "person"
    fields = H_FIELDS if ledger == "house" else P_FIELDS
    args, variables = [], {}
    if sel["filter"] in fields:
        value = (seed.rows["ha0"] if ledger == "house" else target)[sel["filter"]]
        kind = "Float" if sel["filter"] == "floor_area" else "Date" if sel["filter"] == "birth_date" else "String"
        args.append(f"filter: {{{camel(sel['filter'])}: {{eq: $v}}}}")
        variables["v"] = float(value) if kind == "Float" else str(value)
        decl = f"($v: {kind})"
    else:
        decl = ""
    if sel["order"] in fields:
        args.append(f"orderBy: [{{field: {sel['order'].upper()}, direction: DESC}}]")
    a = f"({', '.join(args)})" if args else ""
    person = f"{pf} residence {{ relationToHead house {{ {hf} residents {{ nodes {{ person {{ {pf} }} }} }} }} }}"
    house = f"{hf} residents {{ edges {{ cursor node {{ person {{ {pf} residence {{ house {{ {hf} }} }} }} }} }} }}"
    if sel["root"] == "persons":
        return f"query{decl} {{ persons{a} {{ nodes {{ {person} }} pageInfo {{ endCursor }} }} }}", variables
    if sel["root"] == "houses":
        return f"query{decl} {{ houses{a} {{ nodes {{ {house} }} pageInfo {{ endCursor }} }} }}", variables
    if sel["root"] == "person":
        pid = seed.ids[labels[sel["target"]]]
        return f'{{ person(id: "{pid}") {{ {person} }} }}', {}
    by = {"person": "SEX", "house": "USE"}[ledger]
    extremes = "min { birthDate }" if ledger == "person" else "max { floorArea } sum { floorArea }"
    agg_args = ", ".join([*(args[:1] if variables else []), f"groupBy: [TOWNSHIP, {by}]"])
    return (f"query{decl} {{ {sel['root']}({agg_args}) "
            f"{{ count {extremes} groups {{ key {{ township }} count }} }} }}"), variables


def decoded_cursors(text: str) -> str:
    out = []
    for c in re.findall(r'"(?:endCursor|cursor)":"([A-Za-z0-9_-]+)"', text):
        out.append(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)).decode("utf-8", "replace"))
    return " ".join(out)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pg=person_grants, hg=house_grants, scope=st.sampled_from(["own", "all", "a", "b"]),
       sels=st.lists(selection, min_size=1, max_size=3))
async def test_no_unreadable_value_leaves_through_graphql(client, world, seed, connection, pg, hg, scope, sels):
    async with connection.begin_nested() as sp:
        user = world.users["cl"]
        row_scope, regions = {"own": ("own", []), "all": ("all", []), "a": ("regions", ["500118101000"]),
                              "b": ("regions", ["500118102000"])}[scope]
        for ledger, grants in (("person", pg), ("house", hg)):
            for fld, level in grants.items():
                await connection.execute(Grant.__table__.insert().values(
                    grantee_type="user", user_id=user.id, ledger=ledger, field=fld, level=level,
                    allow_lookup=False, row_scope=row_scope, regions=regions, created_by="test"))
        forbidden: list[str] = []
        for label, row in seed.rows.items():
            ledger = {"p": "person", "h": "house"}.get(label[0])
            if ledger is None:
                continue
            grants = pg if ledger == "person" else hg
            for fld in SEARCHED[ledger]:
                if not visible(row["region_code"], grants, scope) or oracle(ledger, fld, grants) != "read":
                    forbidden.append(str(row[fld]))
        for sel in sels:
            query, variables = build(sel, seed)
            r = await client.post("/graphql", json={"query": query, "variables": variables}, headers=world.dept)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body.get("data") is not None or body.get("errors"), query
            blob = r.text + " " + decoded_cursors(r.text)
            for secret in forbidden:
                assert secret not in blob, (query, variables, secret)
        await sp.rollback()
