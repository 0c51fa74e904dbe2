"""The 422 a query answers for what it can't take: a bad operator, value, order or grouping."""

from __future__ import annotations

from app.errors import FieldError, Problem


class Refused(Problem):
    """A query.invalid problem raised by the operators: REST and GraphQL let it answer the request,
    reports catch it and keep its errors beside their other template errors (operators.condition)."""


def refused(errors: list[FieldError]) -> Refused:
    return Refused(422, "query.invalid", "查询参数有误", errors=errors)


def query_problem(path: str, code: str, message: str) -> Refused:
    return refused([FieldError(path, code, message)])
