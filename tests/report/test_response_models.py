"""The report endpoints publish typed responses, and what they really answer conforms to them: every
report response of the whole workflow (and of the reader-cut tests) is validated against the published
OpenAPI document, by path, method, status and media type."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.report import test_reader_access as reader
from tests.report.test_workflow import test_full_workflow

DOC = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "openapi.json").read_text())
REPORT = re.compile(r"^/api/v1/(report-templates|report-tasks|metrics)")


def _operations() -> list[tuple[re.Pattern, str, dict]]:
    out = []
    for path, ops in DOC["paths"].items():
        if REPORT.match(path):
            rx = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
            out += [(rx, method.upper(), op) for method, op in ops.items()]
    # Literal paths before templated ones (/report-tasks before /report-tasks/{id}).
    return sorted(out, key=lambda o: o[0].pattern.count("[^/]+"))


OPS = _operations()
SEEN: set[tuple[str, str, int]] = set()


def check(method: str, path: str, status: int, media: str, body: bytes) -> None:
    op = next((o for rx, m, o in OPS if m == method and rx.match(path)), None)
    assert op is not None, f"{method} {path} is not published"
    resp = op["responses"].get(str(status))
    assert resp is not None, f"{method} {path} answered {status}, which it does not declare"
    content = resp.get("content", {})
    assert media in content, f"{method} {path} {status}: {media} not declared ({list(content)})"
    schema = content[media].get("schema")
    assert schema, f"{method} {path} {status} {media}: no schema"
    SEEN.add((method, re.sub(r"/\d+", "/{id}", path), status))
    if schema.get("format") == "binary":
        assert body, "empty file"
        return
    validator = Draft202012Validator(
        {**schema, "components": DOC["components"]}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(json.loads(body)), key=lambda e: list(e.path))
    assert not errors, f"{method} {path} {status}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message[:200]}" for e in errors[:5]
    )


@pytest.fixture
def conforming(client):
    async def hook(response):
        if REPORT.match(response.request.url.path):
            await response.aread()
            media = response.headers.get("content-type", "").split(";")[0]
            check(
                response.request.method,
                response.request.url.path,
                response.status_code,
                media,
                response.content,
            )

    client.event_hooks["response"].append(hook)
    return client


async def test_schema_report_endpoints_publish_typed_responses():
    empty = [
        (m, p, code)
        for p, ops in DOC["paths"].items()
        if REPORT.match(p)
        for m, op in ops.items()
        for code, r in op["responses"].items()
        for c in r.get("content", {}).values()
        if not c.get("schema")
    ]
    assert empty == []
    for _, _, op in OPS:
        assert {"401", "403", "422"} & set(op["responses"]), op["summary"]


async def test_schema_workflow_answers_conform(conforming, world, people, session):
    SEEN.clear()
    await test_full_workflow(conforming, world, people, session)
    # Every report operation was answered at least once with a 2xx, and some problems too.
    ok = {(m, p) for m, p, s in SEEN if s < 300}
    assert len(ok) >= 16, sorted(ok)
    assert {s for _, _, s in SEEN} >= {200, 201, 403, 404, 409, 422}


async def test_schema_reader_cut_answers_conform(conforming, world, people, session, settings):
    SEEN.clear()
    tid = await reader._approved(conforming, world, reader.VISIT)
    await conforming.post(f"{reader.T}/{tid}/dispatch", json={"period": "2026-11"}, headers=world.dept)
    tasks = (await conforming.get(reader.TASKS, headers=world.dept)).json()["items"]
    for t in tasks:
        await conforming.get(f"{reader.TASKS}/{t['id']}", headers=world.a)
    q = {"period": "2026-11", "states": reader.ALL_STATES}
    for fmt in ("json", "csv", "xlsx"):
        await conforming.get(f"{reader.T}/{tid}/aggregate", params={**q, "format": fmt}, headers=world.dept)
    agg = await reader._approved(
        conforming,
        world,
        {
            "code": "dis_sum",
            "name": "补贴汇总",
            "kind": "aggregate",
            "ledger": "disability",
            "rows": {"by": "village"},
            "columns": [
                {"kind": "aggregate", "code": "n", "label": "人数", "fn": "count"},
                {
                    "kind": "aggregate",
                    "code": "avg",
                    "label": "平均补贴",
                    "fn": "avg",
                    "path": "subsidy_amount",
                },
                {"kind": "formula", "code": "per", "label": "人均", "expr": "avg / n"},
            ],
        },
    )
    await conforming.get(f"{reader.T}/{agg}/aggregate", headers=world.dept)
    await conforming.get(f"{reader.T}/{agg}/analysis", headers=world.dept)
    # The rest of the operations: list / read / edit a template, refuse a version, refresh a task.
    await conforming.get(reader.T, headers=world.dept)
    await conforming.get(f"{reader.T}/{tid}", headers=world.dept)
    r = await conforming.put(
        f"{reader.T}/{tid}", json={**reader.VISIT, "name": "走访月报（二）"}, headers=world.dept
    )
    assert r.status_code == 200, r.text
    assert (await conforming.post(f"{reader.T}/{tid}/submit", headers=world.dept)).status_code == 200
    r = await conforming.post(
        f"{reader.T}/{tid}/refuse", json={"reason": "与既有报表重复"}, headers=world.admin
    )
    assert r.status_code == 200, r.text
    task_a = next(t["id"] for t in tasks if t["township_code"].startswith(reader.A))
    assert (await conforming.post(f"{reader.TASKS}/{task_a}/refresh", headers=world.a)).status_code == 200
    assert (await conforming.get(f"{reader.TASKS}/{task_a}", headers={})).status_code == 401
    assert (await conforming.get(f"{reader.TASKS}/abc", headers=world.a)).status_code == 422
    ok = {(m, p) for m, p, s in SEEN if s < 300}
    T = "/api/v1/report-templates"
    # With the workflow test above, every one of the 21 report operations has answered.
    assert {
        ("GET", T),
        ("GET", T + "/{id}"),
        ("PUT", T + "/{id}"),
        ("POST", T + "/{id}/refuse"),
        ("POST", "/api/v1/report-tasks/{id}/refresh"),
    } <= ok
    assert {s for _, _, s in SEEN} >= {200, 201, 401, 422}
