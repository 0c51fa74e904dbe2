"""graphql-core executor for our schema: root ledger fields are answered by one SQL statement each.

graphql-core would otherwise call a resolver per field per object and complete every value in Python.
Here a root ledger field is intercepted before resolution: its selection (fragments, directives and
variables applied by graphql-core's own field collection) is compiled to one statement, PostgreSQL
returns the field's JSON, and that JSON is placed in the response as is (orjson.Fragment). Everything
else (introspection, `me`, code lists, __typename) runs the normal way.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from graphql import GraphQLError, GraphQLObjectType, get_named_type
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.access.audit import audit_read
from app.catalog.loader import get_catalog
from app.db.fast import VERSION_SQL, Stale
from app.db.faults import problem_for
from app.errors import Problem
from app.graphql import cache
from app.graphql.cache import Entry, Var
from app.graphql.compiler import Compiler, Withheld
from app.graphql.context import GraphQLContext
from app.graphql.errors import GqlError, from_problem, internal
from app.graphql.types import ROOT_KEY

log = logging.getLogger(__name__)


class _Selection:
    """The compiler's view of the executor: collected sub-fields and coerced arguments."""

    def __init__(self, ex: LedgerExecutor, variables: Any):
        self.ex, self.variables = ex, variables

    def fields(self, type_name: str, group: list) -> dict[str, list]:
        t = self.ex.schema.get_type(type_name)
        assert isinstance(t, GraphQLObjectType)
        return self.ex.collect_subfields(t, group).grouped_field_set

    def args(self, type_name: str, group: list) -> dict[str, Any]:
        t = self.ex.schema.get_type(type_name)
        assert isinstance(t, GraphQLObjectType)
        d = group[0]
        return get_argument_values(
            t.fields[d.node.name.value], d.node, self.variables, d.fragment_variable_values
        )


class LedgerExecutor(StrawberryGraphQLCoreExecutionContext):
    def execute_field(self, parent_type, source, field_details_list, path, position_context):
        query_type = self.schema.query_type
        if path.prev is None and query_type is not None and parent_type is query_type:
            field_def = query_type.fields.get(field_details_list[0].node.name.value)
            backref = field_def and field_def.extensions.get("strawberry-definition")
            root = backref and backref.metadata.get(ROOT_KEY)
            if root:
                return self._ledger_root(root, field_def, field_details_list, path)
        return super().execute_field(parent_type, source, field_details_list, path, position_context)

    async def _ledger_root(self, root: tuple[str, str], field_def, group: list, path: Path) -> Any:
        kind, ledger = root
        ctx: GraphQLContext = self.context_value
        try:
            await ctx.load_grants()
            key, parametric = self._statement_key(ctx, str(path.key), group)
            entry = cache.statements.get(key) if key is not None else None
            params = entry.params_for(self._variables()) if entry is not None else None
            if entry is None or params is None:
                entry = await self._compile(ctx, kind, ledger, field_def, group, path, parametric)
                params = entry.params
                if key is not None:
                    cache.statements.put(key, entry)
            text = await _run(ctx, entry.sql, params)
            if text is None:
                return None
            if not entry.withheld and not entry.audits:
                return orjson.Fragment(text)  # PostgreSQL's JSON goes out without a parse / re-encode
            data = orjson.loads(text)
            if entry.audits:
                await _audit(ctx, entry.audits, _strip_audit_ids(data, {}))
            for w in entry.withheld:
                self._report(w, data, path)
            return data
        except Exception as exc:  # noqa: BLE001 - every failure becomes a located field error
            if ctx.reads is not None:  # the fast way: answered again the long way (router.py)
                ctx.stale = True
                return None
            self.handle_field_error(_as_graphql_error(exc), field_def.type, group, path)
            return None

    def _variables(self) -> dict[str, Any]:
        return self.variable_values.coerced if self.variable_values is not None else {}

    def _statement_key(
        self, ctx: GraphQLContext, response_key: str, group: list
    ) -> tuple[tuple | None, frozenset[str]]:
        """The cache key of this root field's statement (cache.py), None if it is not cacheable, and
        the parametric variables."""
        parametric = cache.parametric_variables(self.operation, self.fragments)
        if any(d.fragment_variable_values for d in group):
            return None, frozenset()
        shape = tuple(
            sorted(
                (
                    name,
                    ("$", type(v).__name__) if name in parametric and cache.markable(v) else cache.freeze(v),
                )
                for name, v in self._variables().items()
            )
        )
        s = ctx.settings
        key = (
            id(self.operation),
            response_key,
            ctx.policy_fingerprint(),
            s.default_page_size,
            s.max_page_size,
            get_catalog().stamp,
            shape,
        )
        try:
            hash(key)
        except TypeError:  # a variable value we can not key on: compile every time
            return None, parametric
        return key, parametric

    async def _compile(
        self,
        ctx: GraphQLContext,
        kind: str,
        ledger: str,
        field_def,
        group: list,
        path: Path,
        parametric: frozenset[str],
    ) -> Entry:
        marked = {
            name: Var(name, v) if name in parametric and cache.markable(v) else v
            for name, v in self._variables().items()
        }
        variables = (
            self.variable_values._replace(coerced=marked) if self.variable_values is not None else None
        )
        d = group[0]
        args = get_argument_values(field_def, d.node, variables, d.fragment_variable_values)
        compiler = Compiler(ctx, _Selection(self, variables))
        stmt = compiler.root(kind, ledger, get_named_type(field_def.type).name, group, args, str(path.key))
        async with ctx.lock:
            dialect = (await _connection(ctx)).dialect
        compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        if compiled._bind_processors:  # none for the types used here (psycopg adapts them); be safe
            raise AssertionError(f"bind processors for {sorted(compiled._bind_processors)}")
        return Entry(
            self.operation,
            compiled.string,
            dict(compiled.construct_params()),
            compiler.binds,
            compiler.withheld,
            compiler.audits,
        )

    def _report(self, w: Withheld, data: Any, root: Path) -> None:
        """One error per withheld field, at its first occurrence (none if no object carried it)."""
        at = _first(data, w.path[1:])
        if at is None:
            return
        p = root
        for key in at:
            p = p.add_key(key)
        err = GraphQLError(w.error.message, w.error.nodes, path=p.as_list(), extensions=w.error.extensions)
        self.collected_errors.add(err, p)


async def _connection(ctx: GraphQLContext) -> AsyncConnection:
    return await (ctx.reads.connection() if ctx.reads is not None else ctx.session.connection())


async def _run(ctx: GraphQLContext, sql: str, params: dict[str, Any]) -> str | None:
    """A root field's statement: the compiled text as SQLAlchemy would send it, run without rebuilding
    or re-keying it (events such as before_cursor_execute still fire). On the fast way the same
    statement returns the access version it saw; another version than the cached caller's is Stale."""
    async with ctx.lock:
        conn = await _connection(ctx)
        if ctx.reads is None:
            return (await conn.exec_driver_sql(sql, params)).scalar()
        assert ctx.access is not None
        version, text = (await conn.exec_driver_sql(f"SELECT {VERSION_SQL}, ({sql})", params)).one()
    if version != ctx.access.version:
        raise Stale
    ctx.confirmed = True
    return text


def _strip_audit_ids(value: Any, found: dict[str, set[int]]) -> dict[str, set[int]]:
    """Remove the "~n" id keys the compiler added, collecting the ids per key."""
    if isinstance(value, dict):
        for k in [k for k in value if k.startswith("~")]:
            found.setdefault(k, set()).add(value.pop(k))
        for v in value.values():
            _strip_audit_ids(v, found)
    elif isinstance(value, list):
        for v in value:
            _strip_audit_ids(v, found)
    return found


async def _audit(
    ctx: GraphQLContext, tags: dict[str, tuple[str, tuple[str, ...]]], ids: dict[str, set[int]]
) -> None:
    """One audit entry per (ledger, fields) whose unmasked sensitive values this response carries."""
    merged: dict[tuple[str, tuple[str, ...]], set[int]] = {}
    for tag, key in tags.items():
        merged.setdefault(key, set()).update(ids.get(tag, ()))
    async with ctx.lock:
        db = ctx.session if ctx.reads is None else await ctx.reads.connection()
        for (ledger, fields), record_ids in merged.items():
            await audit_read(db, ctx.policy(ledger), sorted(record_ids), "graphql", fields=list(fields))


def _first(value: Any, steps: list) -> list | None:
    if not steps:
        return []
    if value is None:
        return None
    step, rest = steps[0], steps[1:]
    if step == "*":
        for i, item in enumerate(value):
            found = _first(item, rest)
            if found is not None:
                return [i, *found]
        return None
    if not isinstance(value, dict) or step not in value:
        return None
    found = [] if not rest else _first(value[step], rest)
    return None if found is None else [step, *found]


def _as_graphql_error(exc: Exception) -> GraphQLError:
    if isinstance(exc, GraphQLError):
        return exc
    if isinstance(exc, Problem):
        return from_problem(exc)
    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == "57014":
        return GqlError("STATEMENT_TIMEOUT", "查询超时：请缩小范围、减少嵌套或分页获取")
    fault = problem_for(exc)
    if fault is not None:
        # Database down, pool exhausted, lock timeout: the whole response is that 503 (router.py).
        raise fault from None
    log.exception("GraphQL root field failed")
    return internal()
