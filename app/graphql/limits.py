"""Request limits: depth and breadth are checked in validation (cached with it), page sizes and the
row bound when a root field is compiled (they depend on variables)."""

from __future__ import annotations

import re

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
    is_introspection_type,
)

from app.config import Settings
from app.graphql.errors import GqlError

MAX_DEPTH = 12  # nested selection sets, e.g. persons.nodes.residence.house.residents.nodes.person.name = 8
# Also keeps json_build_object (key + value per field, one more for the audit id) under PostgreSQL's
# 100-argument limit.
MAX_FIELDS_PER_SELECTION = 48
MAX_FIELDS = 500  # in the whole operation, fragments expanded
MAX_ROOT_FIELDS = 10  # each root ledger field is one SQL statement
MAX_ROWS = 250_000  # product of page sizes along a nesting path (50 x 50 x 50 passes, 1000 x 1000 not)


MAX_TOKENS = 5_000  # a real query is a few hundred; graphql-core's parser costs ~50 µs a token
# Names, punctuators and numbers as graphql-core's lexer cuts them; strings, block strings and
# comments are one token (or none), so they are removed first.
_IGNORED = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*')
_TOKEN = re.compile(r"[_A-Za-z][_0-9A-Za-z]*|-?[0-9][0-9.eE+-]*|\.\.\.|[!$&()\[\]{}:=@|]")
_INTROSPECTION_ROOTS = {"__schema", "__type"}


def too_many_tokens(query: str) -> bool:
    """Over MAX_TOKENS, counted in C (regular expressions) before the document is parsed, so a
    flood of aliases or `__typename` is refused without running the parser on it."""
    if len(query) <= MAX_TOKENS:  # every token is at least one character
        return False
    stripped = _IGNORED.sub('""', query)
    for count, _ in enumerate(_TOKEN.finditer(stripped), 1):
        if count > MAX_TOKENS:
            return True
    return False


class _Over(Exception):
    pass


class DepthAndBreadth(ValidationRule):
    """Every selection counts — `__typename`, aliases of one field, each spread of a fragment — except
    the introspection roots (__schema, __type), whose depth is fixed by the schema. The walk stops at
    the first limit passed, so a fragment spread twice in each of twenty fragments can't make it
    expand a million selections."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args) -> None:
        total = [0]

        def refuse(code: str, message: str, at) -> None:
            self.report_error(GraphQLError(message, at, extensions={"code": code}))
            raise _Over

        def fields_of(sel: SelectionSetNode, seen: frozenset[str], out: list[FieldNode]) -> list[FieldNode]:
            for s in sel.selections:
                if isinstance(s, FieldNode):
                    if s.name.value not in _INTROSPECTION_ROOTS:
                        out.append(s)
                        if len(out) > MAX_FIELDS:
                            refuse("QUERY_TOO_BROAD", f"一次查询最多 {MAX_FIELDS} 个字段", sel)
                elif isinstance(s, InlineFragmentNode):
                    fields_of(s.selection_set, seen, out)
                elif isinstance(s, FragmentSpreadNode) and s.name.value not in seen:
                    frag = self.context.get_fragment(s.name.value)
                    if frag is not None:
                        fields_of(frag.selection_set, seen | {s.name.value}, out)
            return out

        def walk(sel: SelectionSetNode, depth: int, root: bool) -> None:
            if depth > MAX_DEPTH:
                refuse("QUERY_TOO_DEEP", f"查询嵌套过深：最多 {MAX_DEPTH} 层", sel)
            fields = fields_of(sel, frozenset(), [])
            keys = {(f.alias or f.name).value for f in fields}
            total[0] += len(fields)
            if root and len(keys) > MAX_ROOT_FIELDS:
                refuse("QUERY_TOO_BROAD", f"一次查询最多 {MAX_ROOT_FIELDS} 个根字段，请拆分查询", sel)
            if len(fields) > MAX_FIELDS_PER_SELECTION:
                refuse("QUERY_TOO_BROAD", f"同一层最多选择 {MAX_FIELDS_PER_SELECTION} 个字段", sel)
            if total[0] > MAX_FIELDS:
                refuse("QUERY_TOO_BROAD", f"一次查询最多 {MAX_FIELDS} 个字段", sel)
            for f in fields:
                if f.selection_set is not None:
                    walk(f.selection_set, depth + 1, False)

        try:
            walk(node.selection_set, 1, True)
        except _Over:
            pass


class NoIntrospection(ValidationRule):
    """Introspection refused (settings.expose_docs off), with a message for people."""

    def enter_field(self, node: FieldNode, *_args) -> None:
        t = self.context.get_type()
        if t is not None and is_introspection_type(get_named_type(t)):
            self.report_error(
                GraphQLError(
                    f"本服务已关闭 GraphQL 内省（introspection），不能查询 {node.name.value}；"
                    "接口定义见 schemas/schema.graphql",
                    node,
                    extensions={"code": "INTROSPECTION_DISABLED"},
                )
            )


def page_size(first: int | None, settings: Settings, where: str) -> int:
    if first is None:
        return settings.default_page_size
    if first < 1:
        raise GqlError("BAD_USER_INPUT", "first 至少为 1", where=where)
    if first > settings.max_page_size:
        raise GqlError("PAGE_SIZE_TOO_LARGE", f"每页最多 {settings.max_page_size} 条（first）", where=where)
    return first


def check_rows(rows: int, where: str) -> None:
    if rows > MAX_ROWS:
        raise GqlError(
            "QUERY_TOO_LARGE", f"嵌套分页的条数相乘超过 {MAX_ROWS}，请减小各层 first 或拆分查询", where=where
        )
