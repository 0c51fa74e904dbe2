"""Grants, masks and row scope hold through nested relations and aggregates."""

from __future__ import annotations

import pytest

from app.config import Settings
from tests.graphql.conftest import GRAPHQL, codes, gql, grant
from tests.world import B

NESTED = """{ houses { nodes { id houseCode ownerIdNumber
    residents { nodes { since person { id name idNumber phone
        disability { certificateNumber guardianPhone disabilityType } } } } } } }"""


def masked_id(number: str) -> str:
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


async def test_masks_hold_through_nested_relations(client, world, seed):
    body = await gql(client, world.dept, NESTED)
    houses = {h["id"]: h for h in body["data"]["houses"]["nodes"]}
    ha0 = houses[str(seed.ids["ha0"])]
    assert ha0["ownerIdNumber"] == masked_id(seed.rows["ha0"]["owner_id_number"])
    people = {r["person"]["id"]: r["person"] for r in ha0["residents"]["nodes"]}
    p = people[str(seed.ids["pa0"])]
    assert p["idNumber"] == masked_id(seed.rows["pa0"]["id_number"])
    assert p["phone"] == seed.rows["pa0"]["phone"][:3] + "****" + seed.rows["pa0"]["phone"][-4:]
    # The certificate's mask shows the embedded ID as the ID's mask does, not the masked type/level digits.
    assert (
        p["disability"]["certificateNumber"]
        == masked_id(seed.rows["da0"]["certificate_number"][:18]) + "****"
    )
    assert p["disability"]["guardianPhone"] == "135****5678" and p["disability"]["disabilityType"] == "****"
    text = str(body)
    for label in ("pa0", "pa1"):
        assert seed.rows[label]["id_number"] not in text and seed.rows[label]["phone"] not in text


async def test_masked_number_or_boolean_is_null_with_error(client, world, seed):
    body = await gql(
        client,
        world.dept,
        "{ persons { nodes { id isDisabled lowIncome { monthlyAllowance householdSize } } } }",
    )
    nodes = body["data"]["persons"]["nodes"]
    assert all(n["isDisabled"] is None for n in nodes)
    errors = {tuple(e["path"]): e for e in body["errors"]}
    assert ("persons", "nodes", 0, "isDisabled") in errors
    li = next(i for i, n in enumerate(nodes) if n["lowIncome"])
    assert nodes[li]["lowIncome"] == {"monthlyAllowance": None, "householdSize": 3}
    e = errors[("persons", "nodes", li, "lowIncome", "monthlyAllowance")]
    assert e["extensions"]["code"] == "MASKED_FIELD" and e["locations"]
    assert len(body["errors"]) == 2  # one per field selection, not one per row


async def test_hidden_field_is_null_with_forbidden_field_error_and_path(
    client, world, seed, service, session
):
    await grant(session, service=service, ledger="person", field="*", level="read")
    await grant(session, service=service, ledger="person", field="id_number", level="hidden")
    await grant(session, service=service, ledger="house", field="*", level="read")
    body = await gql(
        client,
        service.headers,
        """{ persons(first: 3) { nodes { name idNumber
        residence { house { houseCode } } } } }""",
    )
    nodes = body["data"]["persons"]["nodes"]
    assert len(nodes) == 3 and all(n["idNumber"] is None and n["name"] for n in nodes)
    assert body["errors"] == [
        {
            "message": "无权访问该字段",
            "locations": [{"line": 1, "column": 36}],
            "path": ["persons", "nodes", 0, "idNumber"],
            "extensions": {"code": "FORBIDDEN_FIELD"},
        }
    ]
    assert nodes[0]["residence"]["house"]["houseCode"] == seed.rows["ha0"]["house_code"]
    assert seed.rows["pa0"]["id_number"] not in str(body)


@pytest.mark.parametrize(
    "query, code, where",
    [
        (
            '{ persons(filter: {idNumber: {eq: "x"}}) { nodes { id } } }',
            "FORBIDDEN_FIELD",
            "persons.filter.idNumber",
        ),
        (
            "{ persons(orderBy: [{field: ID_NUMBER}]) { nodes { id } } }",
            "FORBIDDEN_FIELD",
            "persons.orderBy[0].field",
        ),
        ("{ personAggregate(groupBy: [ID_NUMBER]) { count } }", None, None),  # not a code-list field: invalid
        (
            '{ persons(filter: {phone: {eq: "13902310000"}}) { nodes { id } } }',
            "MASKED_FIELD",
            "persons.filter.phone",
        ),
        (
            '{ persons(filter: {or: [{phone: {prefix: "139"}}]}) { nodes { id } } }',
            "MASKED_FIELD",
            "persons.filter.or[0].phone",
        ),
        (
            "{ persons(orderBy: [{field: PHONE}]) { nodes { id } } }",
            "MASKED_FIELD",
            "persons.orderBy[0].field",
        ),
        (
            "{ personAggregate(groupBy: [LOW_INCOME_STATUS]) { count } }",
            "MASKED_FIELD",
            "personAggregate.groupBy[0]",
        ),
        (
            '{ houses { nodes { residents(filter: {idNumber: {eq: "x"}}) { nodes { since } } } } }',
            "FORBIDDEN_FIELD",
            "houses.nodes.residents.filter.idNumber",
        ),
        (
            "{ disabilityAggregate { sum { subsidyAmount } } }",
            "FORBIDDEN_FIELD",
            "disabilityAggregate.sum.subsidyAmount",
        ),
        (
            "{ lowIncomeAggregate { max { monthlyAllowance } } }",
            "MASKED_FIELD",
            "lowIncomeAggregate.max.monthlyAllowance",
        ),
    ],
)
async def test_filters_order_and_aggregates_on_hidden_or_masked_fields_are_refused(
    client, world, seed, service, session, query, code, where
):
    await grant(session, service=service, ledger="*", field="*", level="read")
    for ledger, fld, level in (
        ("person", "id_number", "hidden"),
        ("person", "phone", "masked"),
        ("person", "low_income_status", "masked"),
        ("disability", "subsidy_amount", "hidden"),
        ("low_income", "monthly_allowance", "masked"),
    ):
        await grant(session, service=service, ledger=ledger, field=fld, level=level)
    r = await client.post(GRAPHQL, json={"query": query}, headers=service.headers)
    body = r.json()
    if code is None:  # refused by GraphQL validation already
        assert body["data"] is None and body["errors"]
        return
    root = next(iter(body["data"]))
    assert body["data"][root] is None
    (err,) = body["errors"]
    assert (
        err["extensions"]["code"] == code and err["extensions"]["argument"] == where and err["path"] == [root]
    )
    assert "13902310000" not in r.text


async def test_masked_field_lookup_where_the_grant_allows_it(client, world, seed, service, session):
    await grant(session, service=service, ledger="person", field="*", level="read")
    await grant(session, service=service, ledger="person", field="id_number", level="masked", lookup=True)
    number = seed.rows["pa3"]["id_number"]
    q = "query($n: String) { persons(filter: {idNumber: {eq: $n}}) { nodes { id idNumber } } }"
    body = await gql(client, service.headers, q, {"n": number})
    assert body["data"]["persons"]["nodes"] == [{"id": str(seed.ids["pa3"]), "idNumber": masked_id(number)}]
    body = await gql(client, service.headers, '{ persons(filter: {idNumber: {gt: "5"}}) { nodes { id } } }')
    assert codes(body) == ["MASKED_FIELD"]


async def test_township_b_sees_nothing_of_a_through_any_nesting(client, world, seed):
    b = await gql(
        client,
        world.b,
        """{ persons { nodes { id residence { house { id residents { nodes { person { id } } } } } } }
        houses { nodes { id residents { nodes { person { id name residence { person { id } } } } } } }
        personAggregate { count } houseAggregate { count } disabilities { nodes { id } } lands { nodes { id } } }""",
    )
    d = b["data"]
    pb0, hb0 = str(seed.ids["pb0"]), str(seed.ids["hb0"])
    assert [p["id"] for p in d["persons"]["nodes"]] == [pb0]
    residents = d["houses"]["nodes"][0]["residents"]["nodes"]
    assert [h["id"] for h in d["houses"]["nodes"]] == [hb0]
    assert [r["person"]["id"] for r in residents] == [pb0]  # pa2 (township A) lives there, unseen
    assert d["personAggregate"]["count"] == 1 and d["houseAggregate"]["count"] == 1
    assert d["disabilities"]["nodes"] == [] and d["lands"]["nodes"] == []
    for label in ("pa0", "pa1", "pa2", "ha0"):
        assert str(seed.ids[label]) not in [pb0, hb0]
        assert seed.rows[label].get("name", "@") not in str(b)
    # A sees its person pa2 but not the house of B pa2 lives in: the relation answers null.
    a = await gql(
        client,
        world.a,
        "query($id: ID!) { person(id: $id) { name residence { house { id } } } }",
        {"id": str(seed.ids["pa2"])},
    )
    assert a["data"]["person"] == {"name": seed.rows["pa2"]["name"], "residence": None}


async def test_service_account_without_grant_gets_nothing(client, world, seed, service):
    body = await gql(
        client,
        service.headers,
        """query($id: ID!) { persons { nodes { id name } }
        person(id: $id) { id } personAggregate(groupBy: [TOWNSHIP]) { count groups { count } }
        houses { nodes { residents { nodes { person { id } } } } } }""",
        {"id": str(seed.ids["pa0"])},
    )
    assert body["data"] == {
        "persons": {"nodes": []},
        "person": None,
        "personAggregate": {"count": 0, "groups": []},
        "houses": {"nodes": []},
    }
    assert "errors" not in body


async def test_grant_on_one_township_limits_nested_rows_too(client, world, seed, service, session):
    for ledger in ("person", "house"):
        await grant(
            session,
            service=service,
            ledger=ledger,
            field="*",
            level="read",
            scope="regions",
            regions=[B + "000"],
        )
    body = await gql(
        client,
        service.headers,
        """{ houses { nodes { id residents { nodes { person { id } } } } }
        persons { nodes { id } } }""",
    )
    assert [h["id"] for h in body["data"]["houses"]["nodes"]] == [str(seed.ids["hb0"])]
    assert [r["person"]["id"] for r in body["data"]["houses"]["nodes"][0]["residents"]["nodes"]] == [
        str(seed.ids["pb0"])
    ]


async def test_no_credentials_and_bad_credentials(client, world, seed):
    body = await gql(client, {}, "{ persons { nodes { id } } me { name } }")
    assert body["data"] == {"persons": None, "me": None} and set(codes(body)) == {"UNAUTHENTICATED"}
    r = await client.post(
        GRAPHQL, json={"query": "{ persons { nodes { id } } }"}, headers={"X-API-Key": "ot_x_y"}
    )
    assert r.status_code == 401 and r.json()["code"] == "auth.invalid_api_key"


async def test_introspection_and_graphiql_follow_expose_docs(settings, sessionmaker, world):
    import httpx

    from app.main import create_app

    for expose in (True, False):
        app = create_app(Settings(**{**settings.model_dump(), "expose_docs": expose}), manage_engine=False)
        app.state.sessionmaker = sessionmaker
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            r = await c.post(GRAPHQL, json={"query": "{ __schema { queryType { name } } }"}, headers=world.a)
            ide = await c.get(GRAPHQL, headers={"Accept": "text/html"})
        if expose:
            assert r.json()["data"]["__schema"]["queryType"]["name"] == "Query" and ide.status_code == 200
        else:
            assert r.json()["data"] is None and "introspection" in r.json()["errors"][0]["message"]
            assert ide.status_code == 404


async def test_unmasked_sensitive_values_are_audited_like_rest(client, world, seed, session):
    from sqlalchemy import select

    from app.access.audit_models import AuditEntry

    async def entries() -> list[AuditEntry]:
        return list(
            (
                await session.scalars(
                    select(AuditEntry).where(AuditEntry.path == "graphql").order_by(AuditEntry.id)
                )
            ).all()
        )

    await gql(client, world.dept, "{ persons { nodes { id idNumber phone } } }")  # masked: nothing to log
    assert await entries() == []
    body = await gql(
        client,
        world.a,
        """query($id: ID!) { house(id: $id) { houseCode
        residents { nodes { person { name idNumber } } } } }""",
        {"id": str(seed.ids["ha0"])},
    )
    assert "~" not in str(body)  # the audit ids travel inside the statement's JSON, never to the caller
    (e,) = await entries()
    assert (e.ledger, e.fields, e.action) == ("person", ["id_number"], "read_sensitive")
    assert e.record_ids == sorted([seed.ids["pa0"], seed.ids["pa1"]]) and e.actor.endswith(":ta")
