"""Read-only report access through GraphQL answers what the report API answers for the same caller."""

from __future__ import annotations

from tests.graphql.conftest import codes, gql

TEMPLATE = {
    "code": "gql_count",
    "name": "各村人口数",
    "kind": "list",
    "ledger": "person",
    "columns": [{"kind": "field", "code": "name", "path": "name"}],
}


async def test_templates_tasks_and_aggregate_equal_rest(client, world):
    r = await client.post("/api/v1/report-templates", json=TEMPLATE, headers=world.dept)
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    rest_templates = (await client.get("/api/v1/report-templates", headers=world.dept)).json()["items"]
    rest_tasks = (await client.get("/api/v1/report-tasks", headers=world.dept)).json()["items"]
    body = await gql(client, world.dept, "{ reportTemplates reportTasks }")
    assert body["data"] == {"reportTemplates": rest_templates, "reportTasks": rest_tasks}
    assert [t["id"] for t in body["data"]["reportTemplates"]] == [tid]
    # Township A does not see the department's templates; an unapproved template has no aggregate.
    assert (await gql(client, world.a, "{ reportTemplates }"))["data"]["reportTemplates"] == []
    body = await gql(
        client, world.dept, "query($id: ID!) { reportAggregate(templateId: $id) }", {"id": str(tid)}
    )
    assert (
        body["data"]["reportAggregate"] is None
        and body["errors"][0]["extensions"]["problem"] == "report.not_approved"
    )
    body = await gql(
        client, world.a, "query($id: ID!) { reportAggregate(templateId: $id) }", {"id": str(tid)}
    )
    assert body["errors"][0]["extensions"]["problem"] == "record.not_found"
    assert codes(await gql(client, {}, "{ reportTasks }")) == ["UNAUTHENTICATED"]
