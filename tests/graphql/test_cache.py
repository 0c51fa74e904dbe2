"""The statement cache (app/graphql/cache.py): a repeated query reuses its SQL with new values, answers
exactly as a fresh compile would, and never outlives a grant change."""

from __future__ import annotations

import pytest
from graphql import parse

from app.graphql import cache
from tests.graphql.conftest import codes, gql, grant
from tests.world import B

SINGLE = "query($id: ID!) { person(id: $id) { id name idNumber residence { house { id houseCode } } } }"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


async def cold(client, headers, query, variables=None) -> dict:
    """The answer with nothing cached (compiled afresh)."""
    cache.statements.clear()
    return await gql(client, headers, query, variables)


async def test_repeated_query_reuses_its_statement_with_new_values(client, world, seed, statements):
    warm = []
    for label in ("pa0", "pa1", "pb0", "pa2"):
        statements.clear()
        warm.append(await gql(client, world.a, SINGLE, {"id": str(seed.ids[label])}))
        assert len([s for s in statements if "json_build_object" in s]) == 1
    assert cache.statements.hits == 3
    for label, body in zip(("pa0", "pa1", "pb0", "pa2"), warm, strict=True):
        assert body == await cold(client, world.a, SINGLE, {"id": str(seed.ids[label])})
    assert warm[0]["data"]["person"]["id"] == str(seed.ids["pa0"])
    assert warm[2]["data"]["person"] is None  # township B's person: outside A's rows, cached or not


async def test_filter_operands_and_cursors_are_bound(client, world, seed):
    q = """query($sex: String, $p: String, $after: String, $d: Date) {
        persons(first: 2, after: $after, filter: {sex: {eq: $sex}, name: {prefix: $p}, birthDate: {gte: $d}},
                orderBy: [{field: BIRTH_DATE, direction: DESC}]) {
          nodes { id name sex birthDate } pageInfo { endCursor hasNextPage } } }"""
    warm = []
    for variables in (
        {"sex": "2", "p": None, "d": "1950-01-01"},
        {"sex": "1", "p": None, "d": "1940-01-01"},
        {"sex": "2", "p": "王", "d": "1950-01-01"},
        {"sex": "1", "p": "李", "d": "1951-01-01"},
        {"sex": None, "p": "张", "d": "1960-06-01"},
    ):
        after = None
        for _ in range(5):
            v = {**variables, "after": after}
            body = await gql(client, world.a, q, v)
            warm.append((v, body))
            conn = body["data"]["persons"]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
    assert cache.statements.hits >= 3 and len(warm) >= 7
    for v, body in warm:
        assert body == await cold(client, world.a, q, v)


async def test_nullable_sort_keys_page_the_same_cached_or_not(client, world, seed):
    # Death dates are all null here: cursors carry a null, which is part of the statement's shape.
    q = """query($after: String) { persons(first: 2, after: $after, orderBy: [{field: DEATH_DATE}]) {
        nodes { id } pageInfo { endCursor hasNextPage } } }"""
    after, seen, warm = None, [], []
    while True:
        body = await gql(client, world.a, q, {"after": after})
        warm.append((after, body))
        conn = body["data"]["persons"]
        seen += [n["id"] for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 6 and cache.statements.hits >= 1
    for after, body in warm:
        assert body == await cold(client, world.a, q, {"after": after})


async def test_bad_values_on_a_cached_statement_get_the_same_errors(client, world, seed):
    await gql(client, world.a, SINGLE, {"id": str(seed.ids["pa0"])})
    for bad in ("abc", "-"):
        body = await gql(client, world.a, SINGLE, {"id": bad})
        assert codes(body) == ["BAD_USER_INPUT"] and body == await cold(client, world.a, SINGLE, {"id": bad})
    q = "query($after: String) { persons(first: 1, after: $after) { nodes { id } } }"
    await gql(client, world.a, q, {"after": "WzFd"})  # [1]
    body = await gql(client, world.a, q, {"after": "bm90LWpzb24"})
    assert codes(body) == ["BAD_USER_INPUT"] and body == await cold(
        client, world.a, q, {"after": "bm90LWpzb24"}
    )


async def test_a_grant_change_between_two_identical_requests_is_obeyed(client, world, seed, service, session):
    q = "query($id: ID!) { person(id: $id) { id name idNumber phone } }"
    v = {"id": str(seed.ids["pa0"])}
    number = seed.rows["pa0"]["id_number"]
    await grant(session, service=service, ledger="person", field="*", level="read")
    first = await gql(client, service.headers, q, v)
    again = await gql(client, service.headers, q, v)
    assert first == again and again["data"]["person"]["idNumber"] == number
    assert cache.statements.hits == 1

    await grant(session, service=service, ledger="person", field="id_number", level="masked")
    body = await gql(client, service.headers, q, v)
    assert body["data"]["person"]["idNumber"] == number[:6] + "*" * (len(number) - 10) + number[-4:]

    await grant(session, service=service, ledger="person", field="phone", level="hidden")
    body = await gql(client, service.headers, q, v)
    assert body["data"]["person"]["phone"] is None and codes(body) == ["FORBIDDEN_FIELD"]

    # Row scope: the most specific grant now limits rows to township B.
    await grant(
        session,
        service=service,
        ledger="person",
        field="name",
        level="read",
        scope="regions",
        regions=[B + "000"],
    )
    body = await gql(client, service.headers, q, v)
    assert body["data"]["person"] is None

    # allow_lookup decides whether a masked field may be filtered on.
    lq = "query($n: String) { persons(filter: {idNumber: {eq: $n}}) { nodes { id } } }"
    await grant(session, service=service, ledger="person", field="name", level="read")
    assert codes(await gql(client, service.headers, lq, {"n": number})) == ["MASKED_FIELD"]
    await grant(session, service=service, ledger="person", field="id_number", level="masked", lookup=True)
    body = await gql(client, service.headers, lq, {"n": number})
    assert "errors" not in body and body["data"]["persons"]["nodes"] == [{"id": str(seed.ids["pa0"])}]


async def test_callers_with_different_grants_never_share_a_statement(client, world, seed):
    v = {"id": str(seed.ids["pa0"])}
    a = await gql(client, world.a, SINGLE, v)
    dept = await gql(client, world.dept, SINGLE, v)
    assert a == await cold(client, world.a, SINGLE, v)
    assert dept == await cold(client, world.dept, SINGLE, v)


def test_parametric_variables_are_those_only_used_as_bindable_values():
    doc = parse("""query($id: ID!, $n: Int, $a: String, $s: String, $t: String, $b: Boolean!, $l: [String!],
                         $f: PersonFilter) {
        person(id: $id) { id name @include(if: $b) }
        persons(first: $n, after: $a, filter: {and: [{name: {eq: $s}}], sex: {in: $l}, not: {phone: {prefix: $t}}}) {
          nodes { id residence { house { residents(filter: $f, after: $a) { nodes { since } } } } } }
        other: persons(filter: {name: {in: [$t]}}) { nodes { id } } }""")
    op = doc.definitions[0]
    assert cache.parametric_variables(op, {}) == {"id", "a", "s"}


async def test_the_cache_is_bounded(client, world, seed, monkeypatch):
    monkeypatch.setattr(cache.statements, "maxsize", 3)
    for n in range(1, 8):
        await gql(client, world.a, f"{{ persons(first: {n}) {{ nodes {{ id }} }} }}")
    assert len(cache.statements.data) == 3


def test_a_variable_used_unbindably_inside_a_fragment_is_not_parametric():
    # The executor hands over its fragments as graphql-core keeps them (FragmentDetails, 3.3+).
    from graphql.execution.collect_fields import FragmentDetails

    doc = parse("""query($s: String!) { persons(filter: {name: {eq: $s}}) { nodes { id } } ...F }
        fragment F on Query { other: persons(filter: {name: {in: [$s]}}) { nodes { id } } }""")
    op, frag = doc.definitions
    assert cache.parametric_variables(op, {}) == {"s"}  # the operation alone binds it
    cache.clear()
    assert cache.parametric_variables(op, {"F": FragmentDetails(frag)}) == frozenset()


FRAGMENT_QUERY = """query($s: String!) { persons(filter: {name: {eq: $s}}) { nodes { id } } ...F }
    fragment F on Query { other: persons(filter: {name: {in: [$s]}}) { nodes { id } } }"""


async def test_a_fragment_query_answers_as_a_fresh_compile_for_each_value(client, world, seed):
    for label in ("pa0", "pa1", "pa0"):
        v = {"s": seed.rows[label]["name"]}
        warm = await gql(client, world.a, FRAGMENT_QUERY, v)
        assert warm == await cold(client, world.a, FRAGMENT_QUERY, v)
        assert "errors" not in warm, warm
        assert [n["id"] for n in warm["data"]["other"]["nodes"]] == [str(seed.ids[label])]
