"""The GraphQL schema: generated ledger types plus a few plain strawberry fields (me, code lists).

`schema` is what /graphql serves and what `onetable schemas export` writes to schemas/schema.graphql.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from typing import Any

import anyio
import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from app.catalog.loader import get_catalog
from app.graphql.executor import LedgerExecutor
from app.graphql.limits import MAX_TOKENS, DepthAndBreadth, NoIntrospection
from app.graphql.reports import FIELDS as REPORT_FIELDS
from app.graphql.spec import registry
from app.graphql.types import SCALAR_MAP, Built, _cls

log = logging.getLogger(__name__)
CACHE_SIZE = 512  # distinct query texts kept parsed and validated


@strawberry.type(description="当前调用者")
class Me:
    kind: str = strawberry.field(description="user（用户）或 service_account（服务账号）")
    name: str = strawberry.field(description="登录名或服务账号名")
    org_unit_id: strawberry.ID = strawberry.field(description="所属单位编号")
    region_code: str = strawberry.field(description="所属单位的管辖区划代码")
    roles: list[str] = strawberry.field(description="角色")


@strawberry.type(description="代码表中的一个值")
class CodeValue:
    value: str = strawberry.field(description="代码")
    label: str = strawberry.field(description="名称")


@strawberry.type(description="代码表（数据标准的一部分）")
class CodeList:
    code: str = strawberry.field(description="代码表代码")
    label: str = strawberry.field(description="名称")
    standard: str | None = strawberry.field(description="依据的标准，如 GB/T 2261.1-2003")
    values: list[CodeValue] = strawberry.field(description="代码值")


def resolve_me(info: strawberry.Info) -> Me | None:
    p = info.context.require_principal()
    return Me(
        kind=p.kind,
        name=p.name,
        org_unit_id=strawberry.ID(str(p.org_unit_id)),
        region_code=p.region_code,
        roles=sorted(p.roles),
    )


def resolve_code_lists(codes: list[str] | None = strawberry.UNSET) -> list[CodeList]:
    lists = get_catalog().codelists.values()
    return [
        CodeList(
            code=c.code,
            label=c.label,
            standard=c.standard,
            values=[CodeValue(value=v, label=label) for v, label in c.values.items()],
        )
        for c in lists
        if not codes or c.code in codes
    ]


class IntrospectionGate(SchemaExtension):
    """Introspection follows the app's settings.expose_docs (production turns it off).

    The rule joins the validation rules, so the validation cache keeps both answers apart."""

    def on_operation(self) -> Iterator[None]:
        settings = getattr(self.execution_context.context, "settings", None)
        if settings is not None and not settings.expose_docs:
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoIntrospection,
            )
        yield


# Documents this long (characters) are parsed and validated in a worker thread: validation of a few
# thousand selections takes around a second (overlapping-fields checks are quadratic), which must not
# stop the event loop. Short documents, the usual case, stay on the loop (a thread hop costs more).
OFF_LOOP_CHARS = 2_000


class OffLoopParserCache(ParserCache):
    async def on_parse(self):
        ec = self.execution_context
        parse = partial(self.cached_parse_document, ec.query, **ec.parse_options)
        ec.graphql_document = (
            await anyio.to_thread.run_sync(parse) if len(ec.query or "") > OFF_LOOP_CHARS else parse()
        )
        yield


class OffLoopValidationCache(ValidationCache):
    async def on_validate(self):
        ec = self.execution_context
        validate = partial(
            self.cached_validate_document, ec.schema._schema, ec.graphql_document, ec.validation_rules
        )
        ec.pre_execution_errors = (
            await anyio.to_thread.run_sync(validate) if len(ec.query or "") > OFF_LOOP_CHARS else validate()
        )
        yield


class OnetableSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:
        # Refusals and bad queries are the caller's business; only unexpected failures are logged
        # (those are logged with their traceback where they are caught).
        for e in errors:
            if e.original_error is not None and not isinstance(e.original_error, GraphQLError):
                log.warning("GraphQL error: %s", e.message)


def build_schema() -> strawberry.Schema:
    built = Built(registry())
    query: Any = _cls("Query", built.root_fields())  # made at run time: its fields are set below
    query.me = strawberry.field(resolver=resolve_me, description="当前调用者（用户或服务账号）")
    query.code_lists = strawberry.field(
        resolver=resolve_code_lists, name="codeLists", description="代码表：台账中代码字段的取值和名称"
    )
    for name, f in REPORT_FIELDS.items():
        setattr(query, name, f)
    query = strawberry.type(query, description="一表通：镇街基础台账，按字段授权共享")
    return OnetableSchema(
        query=query,
        execution_context_class=LedgerExecutor,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        extensions=[
            IntrospectionGate,
            # The parser's own bound behind the router's count (router.py), in case they disagree.
            lambda: MaxTokensLimiter(2 * MAX_TOKENS),
            lambda: AddValidationRules([DepthAndBreadth]),
            lambda: OffLoopParserCache(maxsize=CACHE_SIZE),
            lambda: OffLoopValidationCache(maxsize=CACHE_SIZE),
        ],
    )


schema = build_schema()  # ledgers/*.yaml alone: what schemas/schema.graphql holds


def schema_in_effect() -> strawberry.Schema:
    """The schema of the catalogue in effect: rebuilt once per catalogue version an admission makes."""
    cat = get_catalog()
    if cat.stamp == "yaml":
        return schema
    got = cat.built.get("graphql_schema")
    if got is None:
        got = cat.built["graphql_schema"] = build_schema()
    return got


__all__ = ["build_schema", "schema", "schema_in_effect"]
