"""One SQL statement per root ledger field, limits with clear errors, caches, and the exported SDL."""

from __future__ import annotations

import re

import pytest

from app.graphql import limits
from app.schemas_export import GRAPHQL_FILE, SCHEMAS_DIR, render_graphql
from tests.graphql.conftest import codes, gql

DEEP = """{ persons { nodes { name idNumber
    residence { since house { houseCode ownerIdNumber
        residents { nodes { since person { name disability { certificateNumber person { name } } } } } } }
    disability { certificateNumber }
    lowIncome { category householdSize }
    landContracts { nodes { share land { parcelCode contractors { nodes { person { name } } } } } }
    memberships { nodes { role organisation { name members { nodes { person { name } } } } } } } } }"""


def ledger_statements(statements: list[str]) -> list[str]:
    return [s for s in statements if re.search(r"\blg_\w+", s)]


def data_statements(statements: list[str]) -> list[str]:
    return [s for s in statements if not re.match(r"\s*(SAVEPOINT|RELEASE|ROLLBACK)", s)]


async def test_one_statement_per_root_field(client, world, seed, statements):
    statements.clear()
    body = await gql(client, world.dept, DEEP)
    assert "errors" not in body and len(body["data"]["persons"]["nodes"]) == 7
    assert (
        len(ledger_statements(statements)) == 1
    )  # seven ledgers, five relations, three levels: one statement
    # Besides it: the catalogue version, the caller (token -> user, org unit) and its grants, once per request.
    assert len(data_statements(statements)) == 4
    statements.clear()
    body = await gql(
        client,
        world.dept,
        DEEP.replace("{ persons", "{ a: persons", 1)[:-1]
        + " houses { nodes { id } } personAggregate(groupBy: [SEX]) { count groups { count } } "
        "me { name } codeLists { code } }",
    )
    assert "errors" not in body
    # The caller is cached now (app/access/cache.py): only the three ledger statements, each of which
    # checks the access version itself; `me` and code lists come from memory.
    assert len(ledger_statements(statements)) == 3 and len(data_statements(statements)) == 3
    assert all("access_version" in s for s in ledger_statements(statements))


async def test_nested_page_of_residents_is_per_parent(client, world, seed):
    body = await gql(
        client,
        world.a,
        """{ houses { nodes { id residents(first: 1) { nodes { person { id } }
        pageInfo { hasNextPage endCursor } } } } }""",
    )
    ha0 = next(h for h in body["data"]["houses"]["nodes"] if h["id"] == str(seed.ids["ha0"]))
    page = ha0["residents"]
    assert [r["person"]["id"] for r in page["nodes"]] == [str(seed.ids["pa0"])] and page["pageInfo"][
        "hasNextPage"
    ]
    nxt = await gql(
        client,
        world.a,
        """query($id: ID!, $c: String) { house(id: $id) { residents(first: 1, after: $c) {
        nodes { person { id } } pageInfo { hasNextPage } } } }""",
        {"id": str(seed.ids["ha0"]), "c": page["pageInfo"]["endCursor"]},
    )
    assert nxt["data"]["house"]["residents"] == {
        "nodes": [{"person": {"id": str(seed.ids["pa1"])}}],
        "pageInfo": {"hasNextPage": False},
    }


def _nest(depth: int) -> str:
    inner = "name"
    for _ in range(depth):
        inner = f"residence {{ house {{ residents {{ nodes {{ person {{ {inner} }} }} }} }} }}"
    return f"{{ persons {{ nodes {{ {inner} }} }} }}"


@pytest.mark.parametrize(
    "query, code",
    [
        (_nest(2), "QUERY_TOO_DEEP"),
        (
            "{ persons { nodes { "
            + " ".join(f"f{i}: name" for i in range(limits.MAX_FIELDS_PER_SELECTION + 1))
            + " } } }",
            "QUERY_TOO_BROAD",
        ),
        (
            "{ "
            + " ".join(f"p{i}: personAggregate {{ count }}" for i in range(limits.MAX_ROOT_FIELDS + 1))
            + " }",
            "QUERY_TOO_BROAD",
        ),
        ("{ persons(first: 1001) { nodes { id } } }", "PAGE_SIZE_TOO_LARGE"),
        ("{ persons(first: 0) { nodes { id } } }", "BAD_USER_INPUT"),
        (
            "{ houses(first: 1000) { nodes { residents(first: 1000) { nodes { since } } } } }",
            "QUERY_TOO_LARGE",
        ),
        ('{ persons(after: "not-a-cursor") { nodes { id } } }', "BAD_USER_INPUT"),
        ('{ persons(filter: {birthDate: {gte: "1990-02-30"}}) { nodes { id } } }', "BAD_USER_INPUT"),
        ('{ persons(filter: {sex: {eq: "不存在的代码"}}) { nodes { id } } }', "BAD_USER_INPUT"),
        ("{ persons(orderBy: [{field: NAME}, {field: NAME}]) { nodes { id } } }", "BAD_USER_INPUT"),
        ('{ person(id: "abc") { id } }', "BAD_USER_INPUT"),
    ],
)
async def test_limits_and_bad_input_get_clear_errors(client, world, seed, query, code):
    r = await client.post("/graphql", json={"query": query}, headers=world.a)
    body = r.json()
    assert r.status_code == 200 and code in codes(body), body
    err = next(e for e in body["errors"] if e["extensions"]["code"] == code)
    assert re.search(r"[\u4e00-\u9fff]", err["message"])  # a message for people, in Chinese
    assert "不存在的代码" not in r.text and "1990-02-30" not in r.text  # values are not echoed


async def test_depth_limit_counts_fragments_but_not_introspection(client, world, seed):
    frag = (
        "fragment R on Person { residence { house { residents { nodes { person { residence { house { "
        "residents { nodes { person { name } } } } } } } } } } }"
    )
    body = await gql(client, world.a, "{ persons { nodes { ...R } } } " + frag)
    assert "QUERY_TOO_DEEP" in codes(body)
    deep_introspection = (
        "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType "
        "{ ofType { name } } } } } } } } } } }"
    )
    assert "errors" not in await gql(client, world.a, deep_introspection)


async def test_parser_and_validation_caches_are_hit(client, world, seed):
    from strawberry.extensions.parser_cache import _get_parse_cache
    from strawberry.extensions.validation_cache import _get_validate_cache

    from app.graphql.schema import CACHE_SIZE

    query = "{ persons(first: 1) { nodes { id } } }"
    await gql(client, world.a, query)
    parse, validate = _get_parse_cache(CACHE_SIZE).cache_info(), _get_validate_cache(CACHE_SIZE).cache_info()
    await gql(client, world.a, query)
    assert _get_parse_cache(CACHE_SIZE).cache_info().hits == parse.hits + 1
    assert _get_validate_cache(CACHE_SIZE).cache_info().hits == validate.hits + 1


def test_exported_sdl_is_current():
    fresh = render_graphql()
    assert fresh is not None and "type Person" in fresh and '"""公民身份号码"""' in fresh
    path = SCHEMAS_DIR / GRAPHQL_FILE
    assert path.exists() and path.read_text(encoding="utf-8") == fresh, (
        "schemas/schema.graphql is out of date: run `onetable schemas export` and commit it"
    )


def test_statement_timeout_and_unexpected_errors_map_to_codes(caplog):
    import psycopg
    from sqlalchemy.exc import OperationalError

    from app.graphql.executor import _as_graphql_error

    timeout = OperationalError("SELECT 1", {}, psycopg.errors.QueryCanceled("canceling statement"))
    assert _as_graphql_error(timeout).extensions["code"] == "STATEMENT_TIMEOUT"
    other = _as_graphql_error(RuntimeError("secret detail 500118199001011234"))
    assert other.extensions["code"] == "INTERNAL" and "500118" not in other.message
