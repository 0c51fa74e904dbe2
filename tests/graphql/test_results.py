"""GraphQL answers equal the REST answers for the same caller: lists, pages, single records, relations."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.catalog.loader import get_catalog
from app.catalog.model import FieldType
from app.graphql.spec import MASKABLE_SCALARS, SCALAR, camel
from tests.graphql.conftest import codes, gql
from tests.world import VILLAGE_A

PERSON = get_catalog().ledger("person")
BASE = ["id", "region_code", "version", "created_at", "updated_at"]
ALL_PERSON = " ".join(camel(c) for c in BASE + [f.code for f in PERSON.fields])


def same(graphql_value, rest_value, code: str, ledger: str = "person") -> bool:
    """Compare one value across the APIs: ids are strings in GraphQL, and a masked number or boolean is
    null there (with a MASKED_FIELD error) where REST shows ****."""
    f = get_catalog().ledger(ledger).field(code)
    if code in ("id", "parent_id") or (f and f.type == FieldType.reference):
        return graphql_value == (None if rest_value is None else str(rest_value))
    if code in ("created_at", "updated_at") or (f and f.type == FieldType.datetime):
        return graphql_value == rest_value or datetime.fromisoformat(graphql_value) == datetime.fromisoformat(
            rest_value
        )
    if rest_value == "****" and f and SCALAR[f.type] not in MASKABLE_SCALARS:
        return graphql_value is None
    return graphql_value == rest_value


def assert_same_records(nodes: list[dict], items: list[dict], ledger: str = "person") -> None:
    assert [n["id"] for n in nodes] == [str(i["id"]) for i in items]
    for node, item in zip(nodes, items, strict=True):
        for code, rest_value in item.items():
            if camel(code) in node:
                assert same(node[camel(code)], rest_value, code, ledger), (
                    code,
                    node[camel(code)],
                    rest_value,
                )


@pytest.mark.parametrize("who", ["a", "b", "dept", "admin"])
async def test_person_list_equals_rest_for_every_caller(client, world, seed, who):
    headers = getattr(world, who)
    rest = (await client.get("/api/v1/ledgers/person/records", headers=headers)).json()["items"]
    body = await gql(client, headers, f"{{ persons {{ nodes {{ {ALL_PERSON} }} }} }}")
    assert_same_records(body["data"]["persons"]["nodes"], rest)
    masked_numbers = [
        f.code for f in PERSON.fields if f.type == FieldType.boolean and rest and rest[0][f.code] == "****"
    ]
    assert set(codes(body)) <= {"MASKED_FIELD"}
    assert bool(masked_numbers) == ("MASKED_FIELD" in codes(body))


async def test_filters_order_and_pages_equal_rest(client, world, seed):
    rest_params = {"sex": "eq.2", "birth_date": "gte.1950-01-01", "order": "birth_date.desc", "limit": 2}
    query = """query($after: String) { persons(first: 2, after: $after, orderBy: [{field: BIRTH_DATE, direction: DESC}],
                 filter: {sex: {eq: "2"}, birthDate: {gte: "1950-01-01"}}) {
                 nodes { id name birthDate } pageInfo { endCursor hasNextPage } } }"""
    cursor, rest_cursor, seen = None, None, []
    while True:
        params = {**rest_params, **({"cursor": rest_cursor} if rest_cursor else {})}
        rest = (await client.get("/api/v1/ledgers/person/records", params=params, headers=world.a)).json()
        page = (await gql(client, world.a, query, {"after": cursor}))["data"]["persons"]
        assert_same_records(page["nodes"], rest["items"])
        assert page["pageInfo"]["hasNextPage"] == (rest["next_cursor"] is not None)
        seen += [n["id"] for n in page["nodes"]]
        cursor, rest_cursor = page["pageInfo"]["endCursor"], rest["next_cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    women = [k for k, v in seed.rows.items() if k.startswith("pa") and v["sex"] == "2"]
    assert sorted(seen) == sorted(str(seed.ids[k]) for k in women) and len(seen) == len(set(seen))


async def test_or_not_in_prefix_and_is_null(client, world, seed):
    ids = seed.ids
    q = """query($ids: [ID!]) { persons(filter: {or: [{id: {in: $ids}}, {name: {prefix: "陈"}}],
             not: {deathDate: {isNull: false}}, regionCode: {prefix: "500118101"}}) { nodes { id } } }"""
    body = await gql(client, world.a, q, {"ids": [str(ids["pa0"]), str(ids["pa1"])]})
    got = {n["id"] for n in body["data"]["persons"]["nodes"]}
    chen = {str(ids[k]) for k, v in seed.rows.items() if k.startswith("pa") and v["name"].startswith("陈")}
    assert got == {str(ids["pa0"]), str(ids["pa1"])} | chen


async def test_single_record_equals_rest_and_is_null_outside_scope(client, world, seed):
    pid = seed.ids["pa0"]
    rest = (await client.get(f"/api/v1/ledgers/person/records/{pid}", headers=world.dept)).json()
    body = await gql(
        client,
        world.dept,
        "query($id: ID!) { person(id: $id) { id name idNumber phone birthDate } }",
        {"id": str(pid)},
    )
    assert_same_records([body["data"]["person"]], [rest])
    body = await gql(client, world.b, "query($id: ID!) { person(id: $id) { id name } }", {"id": str(pid)})
    assert body["data"]["person"] is None and "errors" not in body


async def test_nested_relations_equal_rest_related(client, world, seed):
    house = seed.ids["ha0"]
    rest = (
        await client.get(f"/api/v1/ledgers/house/records/{house}/related/residents", headers=world.dept)
    ).json()
    body = await gql(
        client,
        world.dept,
        """query($id: ID!) { house(id: $id) { houseCode
        residents { nodes { since person { id name idNumber phone birthDate ethnicity } } } } }""",
        {"id": str(house)},
    )
    links = body["data"]["house"]["residents"]["nodes"]
    assert_same_records([link["person"] for link in links], rest["items"])
    assert [link["since"] for link in links] == [i["link_since"] for i in rest["items"]]
    # And the other way round, through the single relation person.residence.house and an extension.
    pid = seed.ids["pa0"]
    rest_house = (
        await client.get(f"/api/v1/ledgers/person/records/{pid}/related/residence", headers=world.a)
    ).json()
    rest_dis = (
        await client.get(f"/api/v1/ledgers/person/records/{pid}/related/disability", headers=world.a)
    ).json()
    body = await gql(
        client,
        world.a,
        """query($id: ID!) { person(id: $id) {
        residence { since house { id houseCode floorArea ownerIdNumber standardAddress } }
        disability { id parentId certificateNumber disabilityType subsidyAmount person { id } }
        landContracts { nodes { share land { id parcelCode areaMu } } } } }""",
        {"id": str(pid)},
    )
    p = body["data"]["person"]
    assert_same_records([p["residence"]["house"]], rest_house["items"], "house")
    assert p["residence"]["since"] == rest_house["items"][0]["link_since"] == "2011-01-01"
    assert_same_records([p["disability"]], rest_dis["items"], "disability")
    assert p["disability"]["person"]["id"] == str(pid)
    assert p["landContracts"]["nodes"] == [
        {
            "share": 0.5,
            "land": {"id": str(seed.ids["la0"]), "parcelCode": "500118101201JA00001", "areaMu": 2.5},
        }
    ]


async def test_edges_cursors_and_typenames(client, world, seed):
    body = await gql(
        client,
        world.a,
        """{ persons(first: 2) { __typename edges { __typename cursor node { __typename id } }
        pageInfo { __typename endCursor hasNextPage } } }""",
    )
    conn = body["data"]["persons"]
    assert conn["__typename"] == "PersonConnection" and conn["pageInfo"]["__typename"] == "PageInfo"
    assert [e["__typename"] for e in conn["edges"]] == ["PersonEdge"] * 2
    assert conn["edges"][-1]["cursor"] == conn["pageInfo"]["endCursor"]
    nxt = await gql(
        client,
        world.a,
        "query($c: String) { persons(first: 2, after: $c) { nodes { id } } }",
        {"c": conn["edges"][0]["cursor"]},
    )
    assert nxt["data"]["persons"]["nodes"][0]["id"] == conn["edges"][1]["node"]["id"]


async def test_fragments_aliases_and_directives(client, world, seed):
    q = """query($withPhone: Boolean!) { people: persons(first: 1) { nodes { ...P other: name
             phone @include(if: $withPhone) } } }
           fragment P on Person { id n: name ... on Person { sex } }"""
    node = (await gql(client, world.a, q, {"withPhone": False}))["data"]["people"]["nodes"][0]
    assert list(node) == ["id", "n", "sex", "other"]
    node = (await gql(client, world.a, q, {"withPhone": True}))["data"]["people"]["nodes"][0]
    assert node["phone"] == seed.rows["pa0"]["phone"]


async def test_aggregates_by_village_and_code_field(client, world, seed):
    rest = (await client.get("/api/v1/ledgers/person/records", headers=world.a)).json()["items"]
    body = await gql(
        client,
        world.a,
        """{ personAggregate(groupBy: [VILLAGE, SEX]) {
        count min { birthDate } max { birthDate } groups { key { village township sex } count } } }""",
    )
    agg = body["data"]["personAggregate"]
    assert agg["count"] == len(rest)
    assert agg["min"]["birthDate"] == min(i["birth_date"] for i in rest)
    expected = {}
    for i in rest:
        expected[i["sex"]] = expected.get(i["sex"], 0) + 1
    assert [(g["key"]["sex"], g["count"]) for g in agg["groups"]] == sorted(expected.items())
    assert {g["key"]["village"] for g in agg["groups"]} == {VILLAGE_A} and agg["groups"][0]["key"][
        "township"
    ] is None
    houses = await gql(
        client,
        world.a,
        """{ houseAggregate(groupBy: [TOWNSHIP], filter: {use: {eq: "10"}}) {
        count sum { floorArea builtYear } avg { floorArea } groups { key { township } count sum { floorArea } } } }""",
    )
    h = houses["data"]["houseAggregate"]
    assert (
        h["count"] == 2
        and h["sum"] == {"floorArea": 164.0, "builtYear": 3983.0}
        and h["avg"]["floorArea"] == 82.0
    )
    assert h["groups"] == [{"key": {"township": "500118101000"}, "count": 2, "sum": {"floorArea": 164.0}}]
    empty = await gql(
        client,
        world.a,
        '{ personAggregate(filter: {name: {eq: "无此人"}}, groupBy: [SEX]) { count groups { count } } }',
    )
    assert empty["data"]["personAggregate"] == {"count": 0, "groups": []}


async def test_me_and_code_lists(client, world):
    body = await gql(
        client,
        world.a,
        '{ me { kind name regionCode roles } codeLists(codes: ["sex"]) { code values { value label } } }',
    )
    assert body["data"]["me"] == {
        "kind": "user",
        "name": "ta",
        "regionCode": "500118101000",
        "roles": ["township_admin"],
    }
    assert {"value": "2", "label": "女"} in body["data"]["codeLists"][0]["values"]
