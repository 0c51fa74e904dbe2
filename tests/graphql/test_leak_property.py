"""Property, two-sided: whatever grants a caller holds and whatever it selects through GraphQL (nested
relations both ways, filters, orders, aggregates, cursors), no value it may not read in plain leaves the
service, the values it may read arrive (plain, or masked where it reads masked), and a filter or sort
on a field it may not read in plain is refused.

The GraphQL twin of tests/access/test_rest_leak_property.py: random grant sets for a department user
on the person and house ledgers, random selections over the seeded district (which has a person of
township A living in a house of township B), every response searched for each seeded value the caller
may not read, and the root rows compared with the oracle (tests/leak_oracle.py, not the policy).
"""

from __future__ import annotations

import base64
import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from app.access.models import Grant
from app.graphql.spec import camel
from tests.leak_oracle import Caller, G, at_least_read, expected, in_scope, level_of
from tests.profile import examples, tally

pytestmark = pytest.mark.property

P_FIELDS = ["name", "id_number", "phone", "hukou_address", "birth_date", "sex"]
H_FIELDS = ["house_code", "standard_address", "owner_name", "owner_id_number", "floor_area"]
SEARCHED = {
    "person": ["name", "id_number", "phone", "hukou_address", "birth_date"],
    "house": ["house_code", "standard_address", "owner_name", "owner_id_number"],
}
PREFIX = {"own": ("500118",), "all": ("",), "a": ("500118101",), "b": ("500118102",)}
MASKABLE = {
    "name",
    "id_number",
    "phone",
    "hukou_address",
    "birth_date",
    "sex",
    "house_code",
    "standard_address",
    "owner_name",
    "owner_id_number",
}  # String / Date: the mask is a value


def caller_of(pg: dict, hg: dict, scope: str) -> Caller:
    return Caller(
        "user",
        "500118",
        [
            G("named", ledger, f, level, PREFIX[scope])
            for ledger, grants in (("person", pg), ("house", hg))
            for f, level in grants.items()
        ],
    )


def gql_value(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    return value.isoformat() if isinstance(value, date) else value


def check_node(caller: Caller, ledger: str, node: dict, row: dict, fields: list[str]) -> None:
    """Each selected field of a root row: null when hidden, the mask when masked, else the value."""
    for f in fields:
        level, want = expected(caller, ledger, f, row[f])
        got = node[camel(f)]
        if level == "hidden" or (level == "masked" and f not in MASKABLE):
            assert got is None, (ledger, f, level, got)
        else:
            assert got == gql_value(want), (ledger, f, level, got, want)


levels = st.sampled_from(["hidden", "masked", "read"])
person_grants = st.fixed_dictionaries({}, optional=dict.fromkeys(["*", *P_FIELDS], levels))
house_grants = st.fixed_dictionaries({}, optional=dict.fromkeys(["*", *H_FIELDS], levels))
selection = st.fixed_dictionaries(
    {
        "root": st.sampled_from(["persons", "houses", "person", "personAggregate", "houseAggregate"]),
        "pf": st.lists(st.sampled_from(P_FIELDS), min_size=1, max_size=4, unique=True),
        "hf": st.lists(st.sampled_from(H_FIELDS), min_size=1, max_size=3, unique=True),
        "filter": st.one_of(st.none(), st.sampled_from(P_FIELDS + H_FIELDS)),
        "order": st.one_of(st.none(), st.sampled_from(P_FIELDS + H_FIELDS)),
        "target": st.integers(0, 6),
    }
)


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
        kind = (
            "Float"
            if sel["filter"] == "floor_area"
            else "Date"
            if sel["filter"] == "birth_date"
            else "String"
        )
        args.append(f"filter: {{{camel(sel['filter'])}: {{eq: $v}}}}")
        variables["v"] = float(value) if kind == "Float" else str(value)
        decl = f"($v: {kind})"
    else:
        decl = ""
    if sel["order"] in fields:
        args.append(f"orderBy: [{{field: {sel['order'].upper()}, direction: DESC}}]")
    a = f"({', '.join(args)})" if args else ""
    person = f"{pf} residence {{ since house {{ {hf} residents {{ nodes {{ person {{ {pf} }} }} }} }} }}"
    house = f"{hf} residents {{ edges {{ cursor node {{ person {{ {pf} residence {{ house {{ {hf} }} }} }} }} }} }}"
    if sel["root"] == "persons":
        return (
            f"query{decl} {{ persons{a} {{ nodes {{ id {person} }} pageInfo {{ endCursor }} }} }}",
            variables,
        )
    if sel["root"] == "houses":
        return f"query{decl} {{ houses{a} {{ nodes {{ id {house} }} pageInfo {{ endCursor }} }} }}", variables
    if sel["root"] == "person":
        pid = seed.ids[labels[sel["target"]]]
        return f'{{ person(id: "{pid}") {{ id {person} }} }}', {}
    by = {"person": "SEX", "house": "USE"}[ledger]
    extremes = "min { birthDate }" if ledger == "person" else "max { floorArea } sum { floorArea }"
    agg_args = ", ".join([*(args[:1] if variables else []), f"groupBy: [TOWNSHIP, {by}]"])
    return (
        f"query{decl} {{ {sel['root']}({agg_args}) "
        f"{{ count {extremes} groups {{ key {{ township }} count }} }} }}"
    ), variables


def decoded_cursors(text: str) -> str:
    out = []
    for c in re.findall(r'"(?:endCursor|cursor)":"([A-Za-z0-9_-]+)"', text):
        out.append(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)).decode("utf-8", "replace"))
    return " ".join(out)


def _matches(sel: dict, ledger: str, row: dict, seed) -> bool:
    fields = H_FIELDS if ledger == "house" else P_FIELDS
    if sel["filter"] not in fields:
        return True
    labels = [f"pa{i}" for i in range(6)] + ["pb0"]
    target = seed.rows["ha0"] if ledger == "house" else seed.rows[labels[sel["target"]]]
    return row[sel["filter"]] == target[sel["filter"]]


def _refused(caller: Caller, sel: dict) -> bool:
    """Filters, sorts, groups and aggregates need the plain value: a masked or hidden field is refused."""
    ledger = "house" if sel["root"].startswith("house") else "person"
    fields = H_FIELDS if ledger == "house" else P_FIELDS
    asked = [f for f in (sel["filter"],) if f in fields]
    if sel["root"] in ("persons", "houses") and sel["order"] in fields:
        asked.append(sel["order"])
    if sel["root"] == "personAggregate":
        asked += ["birth_date", "sex"]
    if sel["root"] == "houseAggregate":
        asked += ["floor_area", "use"]
    return sel["root"] != "person" and not all(at_least_read(level_of(caller, ledger, f)) for f in asked)


def check_root(caller: Caller, sel: dict, body: dict, seed) -> None:
    root = body["data"][sel["root"]] if body.get("data") else None
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
    if _refused(caller, sel):
        assert root is None and codes & {"MASKED_FIELD", "FORBIDDEN_FIELD"}, (sel, body)
        return
    ledger = "house" if sel["root"].startswith("house") else "person"
    labels = [k for k in seed.rows if k[0] == ledger[0] and k[1] in "ab"]
    want = [
        lb
        for lb in labels
        if in_scope(caller, ledger, seed.rows[lb]["region_code"])
        and _matches(sel, ledger, seed.rows[lb], seed)
    ]
    fields = sel["hf"] if ledger == "house" else sel["pf"]
    if sel["root"] == "person":
        label = ([f"pa{i}" for i in range(6)] + ["pb0"])[sel["target"]]
        if label not in want:
            assert root is None, (sel, root)
            return
        assert root is not None and root["id"] == str(seed.ids[label]), (sel, body)
        check_node(caller, ledger, root, seed.rows[label], fields)
        return
    assert root is not None, (sel, body)
    if sel["root"].endswith("Aggregate"):
        assert root["count"] == len(want), (sel, root, want)
        return
    by_id = {n["id"]: n for n in root["nodes"]}
    assert sorted(by_id) == sorted(str(seed.ids[lb]) for lb in want), (sel, want)
    for lb in want:
        check_node(caller, ledger, by_id[str(seed.ids[lb])], seed.rows[lb], fields)


@settings(
    max_examples=examples(150, 3500),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pg=person_grants,
    hg=house_grants,
    scope=st.sampled_from(["own", "all", "a", "b"]),
    sels=st.lists(selection, min_size=1, max_size=3),
)
async def test_no_unreadable_value_leaves_through_graphql(
    client, world, seed, connection, pg, hg, scope, sels
):
    tally("graphql")
    async with connection.begin_nested() as sp:
        user = world.users["cl"]
        row_scope, regions = {
            "own": ("own", []),
            "all": ("all", []),
            "a": ("regions", ["500118101000"]),
            "b": ("regions", ["500118102000"]),
        }[scope]
        for ledger, grants in (("person", pg), ("house", hg)):
            for fld, level in grants.items():
                await connection.execute(
                    Grant.__table__.insert().values(
                        grantee_type="user",
                        user_id=user.id,
                        ledger=ledger,
                        field=fld,
                        level=level,
                        allow_lookup=False,
                        row_scope=row_scope,
                        regions=regions,
                        created_by="test",
                    )
                )
        caller = caller_of(pg, hg, scope)
        forbidden: list[str] = []
        for label, row in seed.rows.items():
            ledger = {"p": "person", "h": "house"}.get(label[0])
            if ledger is None:
                continue
            for fld in SEARCHED[ledger]:
                if not in_scope(caller, ledger, row["region_code"]) or not at_least_read(
                    level_of(caller, ledger, fld)
                ):
                    forbidden.append(str(row[fld]))
        for sel in sels:
            query, variables = build(sel, seed)
            r = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=world.dept
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body.get("data") is not None or body.get("errors"), query
            blob = r.text + " " + decoded_cursors(r.text)
            for secret in forbidden:
                assert secret not in blob, (query, variables, secret)
            check_root(caller, sel, body, seed)
        await sp.rollback()
