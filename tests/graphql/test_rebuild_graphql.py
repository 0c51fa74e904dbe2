"""Issue 8 items 1 and 7 through GraphQL: the same policy, the same caps and masks as REST."""

from __future__ import annotations

from sqlalchemy import update

from app.db.ledger_tables import tables
from tests.access.test_rebuild import id_mask, rebuilt
from tests.graphql.conftest import gql


async def test_item1_graphql_birth_date_capped_and_owner_id_masked(client, world, seed):
    body = await gql(
        client,
        world.dept,
        "{ persons { nodes { id name idNumber birthDate } } "
        "houses { nodes { id ownerName ownerIdNumber } } }",
    )
    people = {n["id"]: n for n in body["data"]["persons"]["nodes"]}
    for label in ("pa0", "pa1"):
        row, got = seed.rows[label], people[str(seed.ids[label])]
        assert got["idNumber"] == id_mask(row["id_number"]) and got["name"] == row["name"]
        assert got["birthDate"] == str(row["birth_date"].year)
        assert rebuilt(got["idNumber"], got["birthDate"]) != row["id_number"]
        assert row["birth_date"].isoformat() not in str(body)
    houses = {n["id"]: n for n in body["data"]["houses"]["nodes"]}
    ha0 = seed.rows["ha0"]
    got = houses[str(seed.ids["ha0"])]
    assert got["ownerIdNumber"] == id_mask(ha0["owner_id_number"]) and got["ownerName"] == ha0["owner_name"]
    body = await gql(
        client, world.dept, "{ persons(orderBy: [{field: BIRTH_DATE, direction: DESC}]) { nodes { id } } }"
    )
    assert "MASKED_FIELD" in str(body.get("errors")), body


async def test_item7_graphql_masked_null_looks_like_masked_value(client, world, seed, session):
    # low_income_status is masked `full` for the department by default; only pa1 has one.
    t = tables().ledgers["person"]
    await session.execute(update(t).where(t.c.id == seed.ids["pa1"]).values(low_income_status="3"))
    await session.flush()
    body = await gql(client, world.dept, "{ persons { nodes { id name lowIncomeStatus } } }")
    nodes = body["data"]["persons"]["nodes"]
    assert len(nodes) >= 6 and {n["lowIncomeStatus"] for n in nodes} == {"****"}, nodes
    assert {n["name"] for n in nodes} >= {seed.rows["pa0"]["name"], seed.rows["pa1"]["name"]}
