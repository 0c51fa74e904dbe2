"""app/query/operators: one operator table for REST, GraphQL and reports; only error codes differ."""

from __future__ import annotations

import pytest
from sqlalchemy import Integer, String, column
from sqlalchemy.dialects import postgresql

from app.catalog.loader import get_catalog
from app.errors import FieldError
from app.query import operators
from app.query.fields import BASE_FIELDS
from app.query.operators import QUERY, TEMPLATE, condition
from app.query.problems import Refused

PERSON = get_catalog().ledgers["person"]
NAME, BIRTH = PERSON.field("name"), PERSON.field("birth_date")
W = "body.filter.0.value"


def sql(clause) -> str:
    return str(clause.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def codes(errors: list[FieldError]) -> list[tuple[str, str]]:
    return [(e.path, e.code) for e in errors]


def test_prefix_escapes_like_wildcards_once():
    clause = condition(column("name", String), NAME, "prefix", "50%_a\\b", W)
    compiled = clause.compile(dialect=postgresql.dialect())
    assert str(compiled).endswith("ESCAPE '\\\\'")  # backslash, as in the pattern
    assert list(compiled.params.values()) == ["50\\%\\_a\\\\b%"]
    assert operators.like_prefix("50%_a\\b") == "50\\%\\_a\\\\b%"


@pytest.mark.parametrize(
    "op, value, query_code",
    [
        ("is_null", "yes", "filter.is_null"),
        ("in", [], "filter.in"),
        ("in", ["x"] * 501, "filter.in"),
        ("eq", None, "filter.value"),
        ("gt", [1, 2], "filter.value"),
    ],
)
def test_shape_errors_name_the_operator_for_queries_and_template_value_for_reports(op, value, query_code):
    col = column("birth_date")
    assert codes(condition(col, BIRTH, op, value, W)) == [(W, query_code)]
    assert codes(condition(col, BIRTH, op, value, W, codes=TEMPLATE)) == [(W, "template.value")]


def test_prefix_only_on_text_and_code_fields():
    assert codes(condition(column("birth_date"), BIRTH, "prefix", "19", W)) == [(W, "filter.prefix")]
    assert codes(condition(column("birth_date"), BIRTH, "prefix", "19", W, codes=TEMPLATE)) == [
        (W, "template.value")
    ]
    assert not isinstance(condition(column("name", String), NAME, "prefix", "张", W), list)


def test_region_code_must_be_digits():
    region = BASE_FIELDS["region_code"]
    assert codes(condition(column("region_code"), region, "eq", "5001x", W)) == [(W, "region_code.format")]
    assert codes(condition(column("region_code"), region, "eq", 5001, W, codes=TEMPLATE)) == [
        (W, "template.value")
    ]
    assert sql(condition(column("region_code"), region, "prefix", "500118", W)).startswith("region_code LIKE")


def test_values_are_coerced_by_the_catalogue_and_keep_its_codes():
    errs = condition(column("birth_date"), BIRTH, "eq", "not a date", W, codes=TEMPLATE)
    assert isinstance(errs, list) and errs[0].code.startswith("date.") and errs[0].path == W
    clause = condition(column("birth_date"), BIRTH, "gte", "2024-01-02", W)
    assert sql(clause) == "birth_date >= '2024-01-02'"


def test_in_reports_every_bad_value():
    errs = condition(column("id", Integer), BASE_FIELDS["id"], "in", ["1", "x", "y"], W, codes=TEMPLATE)
    assert [e.path for e in errs] == [W, W] and all(e.code == "number.format" for e in errs)
    ok = condition(column("id", Integer), BASE_FIELDS["id"], "in", ["1", 2], W)
    assert sql(ok) == "id IN (1, 2)"


def test_is_null_both_ways():
    assert sql(condition(column("name"), NAME, "is_null", True, W)) == "name IS NULL"
    assert sql(condition(column("name"), NAME, "is_null", False, W)) == "name IS NOT NULL"


def test_operand_raises_the_422_rest_and_graphql_answer():
    with pytest.raises(Refused) as got:
        operators.operand(BIRTH, "lt", "x", "query.birth_date")
    p = got.value
    assert (p.status, p.code, p.errors[0].path) == (422, "query.invalid", "query.birth_date")
    assert QUERY.in_ == "filter.in"
