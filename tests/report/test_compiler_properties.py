"""Property tests of the template compiler: generated valid templates compile to one statement that runs;
generated invalid ones are refused with problem+json naming the bad path."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from app.catalog.loader import get_catalog
from app.errors import Problem
from app.org.models import OrgUnit
from app.report import formula as fm
from app.report.compiler import compile_template, department_policies, department_principal
from app.report.dsl import SCHEMA_FILE, parse_spec, render_schema
from tests.world import A

cat = get_catalog()
PLAIN = [f.code for f in cat.ledgers["person"].fields]
PATHS = (
    PLAIN
    + [f"disability.{f.code}" for f in cat.ledgers["disability"].fields]
    + [f"residence.{f.code}" for f in cat.ledgers["house"].fields]
    + ["region_code", "id"]
)
NUMERIC = ["disability.subsidy_amount", "residence.floor_area", "residence.built_year"]
CONDITIONS = [
    {"path": "sex", "op": "eq", "value": "1"},
    {"path": "sex", "op": "in", "value": ["1", "2"]},
    {"path": "birth_date", "op": "gte", "value": "1960-01-01"},
    {"path": "is_disabled", "op": "eq", "value": True},
    {"path": "region_code", "op": "prefix", "value": "500118101"},
    {"path": "disability.disability_level", "op": "lte", "value": "2"},
    {"path": "residence.floor_area", "op": "gt", "value": 50},
    {"path": "death_date", "op": "is_null", "value": True},
    {"path": "name", "op": "prefix", "value": "李"},
]
settings_ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def exprs(names: list[str]):
    leaf = st.one_of(st.sampled_from(names), st.integers(0, 999).map(str))
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from("+-*/"), inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"-{e}"),
        ),
        max_leaves=6,
    )


@st.composite
def list_templates(draw):
    paths = draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=12, unique=True))
    cols = [{"kind": "field", "code": f"c{i}", "path": p} for i, p in enumerate(paths)]
    nums = [f"n{i}" for i in range(draw(st.integers(0, 2)))]
    cols += [{"kind": "field", "code": n, "path": draw(st.sampled_from(NUMERIC))} for n in nums]
    if nums:
        cols.append({"kind": "formula", "code": "f", "label": "公式", "expr": draw(exprs(nums))})
    for i, typ in enumerate(
        draw(st.lists(st.sampled_from(["text", "integer", "decimal", "date", "boolean"]), max_size=3))
    ):
        cols.append(
            {
                "kind": "gap",
                "code": f"g{i}",
                "label": f"空缺{i}",
                "type": typ,
                "required": draw(st.booleans()),
            }
        )
    if draw(st.booleans()):
        cols.append(
            {"kind": "gap", "code": "wb", "label": "写回", "write_back": "disability.education_level"}
        )
    return {
        "code": "gen",
        "name": "生成的模板",
        "kind": "list",
        "ledger": "person",
        "filter": draw(st.lists(st.sampled_from(CONDITIONS), max_size=3)),
        "columns": cols,
    }


@st.composite
def aggregate_templates(draw):
    by = draw(st.sampled_from(["village", "township", "code"]))
    rows = {
        "by": by,
        **(
            {"path": draw(st.sampled_from(["sex", "ethnicity", "disability.disability_type"]))}
            if by == "code"
            else {}
        ),
    }
    cols = []
    for i in range(draw(st.integers(1, 8))):
        fn = draw(st.sampled_from(["count", "sum", "avg", "min", "max", "count_distinct"]))
        col = {
            "kind": "aggregate",
            "code": f"a{i}",
            "label": f"统计{i}",
            "fn": fn,
            "filter": draw(st.lists(st.sampled_from(CONDITIONS), max_size=2)),
        }
        if fn in ("sum", "avg", "min", "max"):
            col["path"] = draw(st.sampled_from(NUMERIC))
        elif fn == "count_distinct" or draw(st.booleans()):
            col["path"] = draw(st.sampled_from(PATHS))
        cols.append(col)
    if len(cols) >= 2:
        cols.append({"kind": "ratio", "code": "r", "label": "比例", "numerator": "a0", "denominator": "a1"})
        cols.append({"kind": "formula", "code": "f", "label": "公式", "expr": draw(exprs(["a0", "a1"]))})
    if draw(st.booleans()):
        cols.append({"kind": "gap", "code": "g", "label": "空缺", "type": "integer", "min": 0})
    return {
        "code": "gen",
        "name": "生成的模板",
        "kind": "aggregate",
        "ledger": "person",
        "rows": rows,
        "filter": draw(st.lists(st.sampled_from(CONDITIONS), max_size=2)),
        "columns": cols,
    }


async def _policies(session):
    unit = (await session.scalars(select(OrgUnit).where(OrgUnit.code == "dept:cl"))).one()
    return await department_policies(session, department_principal(unit))


@given(spec=st.one_of(list_templates(), aggregate_templates()))
@settings_
async def test_valid_templates_compile_to_one_statement_that_runs(session, people, spec):
    compiled = compile_template(parse_spec(spec), await _policies(session), A)
    async with session.begin_nested():  # each example in its own savepoint
        rows = (await session.execute(compiled.stmt)).all()
    assert len(compiled.columns) == len(spec["columns"])
    for r in rows:
        assert set(r.data) >= {c.code for c in compiled.columns if c.kind != "gap"}
    if spec["kind"] == "aggregate" and spec["rows"]["by"] == "village":
        assert len(rows) == 2  # the two villages of township A, also when they have no records
    # Values from the template are bound, never inlined into the SQL text.
    sql = str(compiled.stmt.compile())
    for c in spec["filter"]:
        if isinstance(c["value"], str) and len(c["value"]) > 2:
            assert c["value"] not in sql


INVALID = [
    ({"kind": "field", "code": "x", "path": "residence.nope"}, "path", "template.field_unknown"),
    ({"kind": "field", "code": "x", "path": "nowhere.name"}, "path", "template.path_unknown"),
    ({"kind": "field", "code": "x", "path": "land_contracts.area_mu"}, "path", "template.path_to_many"),
    ({"kind": "formula", "code": "x", "label": "坏", "expr": "c0 +"}, "expr", "formula.syntax"),
    ({"kind": "formula", "code": "x", "label": "坏", "expr": "zz * 2"}, "expr", "formula.unknown_column"),
    ({"kind": "formula", "code": "x", "label": "坏", "expr": "c0 * 2"}, "expr", "formula.not_numeric"),
    ({"kind": "formula", "code": "x", "label": "坏", "expr": "x + 1"}, "expr", "formula.cycle"),
    ({"kind": "gap", "code": "x", "label": "坏", "type": "code"}, "codelist", "template.codelist_unknown"),
    ({"kind": "gap", "code": "x", "label": "坏", "type": "text", "min": 1}, "min", "template.gap_range"),
    ({"kind": "gap", "code": "x", "label": "坏", "type": "texts"}, "type", "template.literal_error"),
    ({"kind": "gap", "code": "x", "label": "坏", "write_back": "id"}, "write_back", "template.write_back"),
    ({"kind": "aggregate", "code": "x", "label": "坏", "fn": "count"}, "kind", "template.aggregate_in_list"),
    ({"kind": "field", "code": "x", "path": "name", "extra": 1}, "extra", "template.extra_forbidden"),
    ({"kind": "nope", "code": "x"}, None, "template.union_tag_invalid"),
]


@given(base=list_templates(), bad=st.sampled_from(INVALID), where=st.integers(0, 20))
@settings_
async def test_invalid_templates_get_problem_json_naming_the_bad_path(
    client, world, dept_grants, base, bad, where
):
    column, attr, code = bad
    cols = [c for c in base["columns"] if c["kind"] == "field"][:3]
    cols = [{**c, "path": "name"} for c in cols]  # text columns: formulas over them are not numeric
    i = where % (len(cols) + 1)
    cols.insert(i, column)
    r = await client.post("/api/v1/report-templates", json={**base, "columns": cols}, headers=world.dept)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    expected = f"body.columns.{i}" + (f".{attr}" if attr else "")
    assert any(e["path"] == expected and e["code"] == code for e in body["errors"]), body["errors"]


async def test_bad_filter_value_and_template_shape_name_their_paths(client, world, dept_grants):
    spec = {
        "code": "x",
        "name": "坏",
        "kind": "list",
        "ledger": "person",
        "filter": [{"path": "sex", "op": "eq", "value": "1"}, {"path": "sex", "op": "eq", "value": "火星"}],
        "columns": [{"kind": "field", "code": "n", "path": "name"}],
    }
    body = (await client.post("/api/v1/report-templates", json=spec, headers=world.dept)).json()
    assert [(e["path"], e["code"]) for e in body["errors"]] == [("body.filter.1.value", "code.unknown")]
    body = (
        await client.post(
            "/api/v1/report-templates", json={**spec, "filter": [], "kind": "aggregate"}, headers=world.dept
        )
    ).json()
    assert body["errors"][0]["path"] == "body" and body["errors"][0]["code"] == "template.value_error"
    body = (
        await client.post(
            "/api/v1/report-templates", json={**spec, "filter": [], "ledger": "nope"}, headers=world.dept
        )
    ).json()
    assert body["errors"][0]["path"] == "body.ledger"


@given(st.text(alphabet="abc0123456789+-*/() .%_x", max_size=40))
@settings(max_examples=300, deadline=None)
def test_formula_parser_never_crashes(src):
    try:
        tree = fm.parse(src)
    except fm.FormulaError as e:
        assert e.code.startswith("formula.")
    else:
        assert fm.refs(tree) <= set("".join(c if c.isalnum() or c == "_" else " " for c in src).split())


def test_published_json_schema_is_current():
    assert SCHEMA_FILE.exists(), "run `python -c 'from app.report.dsl import write_schema; write_schema()'`"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), (
        "schemas/report_template.schema.json drifted: regenerate with app.report.dsl.write_schema()"
    )
    schema = json.loads(render_schema())
    assert set(schema["$defs"]) >= {
        "GapColumn",
        "AggregateColumn",
        "FormulaColumn",
        "FieldColumn",
        "RatioColumn",
    }


def test_problem_is_raised_for_unknown_ledger_before_any_sql():
    try:
        compile_template(
            parse_spec(
                {
                    "code": "x",
                    "name": "x",
                    "kind": "list",
                    "ledger": "nope",
                    "columns": [{"kind": "field", "code": "a", "path": "name"}],
                }
            ),
            {},
            A,
        )
    except Problem as p:
        assert p.errors[0].path == "body.ledger"
    else:
        raise AssertionError("expected a problem")
