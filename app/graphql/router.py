"""The /graphql endpoint (POST and GET queries, GraphiQL in the browser when docs are exposed)."""

from __future__ import annotations

from cross_web import HTTPException
from fastapi import Request
from fastapi.routing import APIWebSocketRoute
from starlette.responses import HTMLResponse, Response
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UNSET

from app.access import cache as access_cache
from app.db.fast import VERSION_SQL
from app.docs import graphiql_html
from app.errors import Problem, http_problem
from app.graphql.context import GraphQLContext, get_context, slow_context
from app.graphql.limits import MAX_TOKENS, too_many_tokens
from app.graphql.schema import schema, schema_in_effect
from app.jsonresponse import JSON, dumps

VERSION_ONLY = f"SELECT {VERSION_SQL}"


class QueryRefused(Exception):
    """A request refused before its document is parsed: answered as a GraphQL error with HTTP 400."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message


class OnetableGraphQLRouter(GraphQLRouter):
    # The schema of the catalogue the request's transaction sees (its Session dependency set it): an
    # admitted field is queryable at once, in every process, without a restart.
    @property
    def schema(self):
        return schema_in_effect()

    @schema.setter
    def schema(self, value) -> None:  # GraphQLRouter.__init__ sets it; the YAML schema is schema_in_effect's
        pass

    def encode_json(self, data: object) -> bytes:
        # orjson passes the JSON PostgreSQL built (orjson.Fragment) through untouched; decimals in report
        # rows become numbers as in REST.
        return dumps(data)

    async def parse_http_body(self, request):
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            if item.query and too_many_tokens(item.query):
                raise QueryRefused(
                    "QUERY_TOO_LARGE",
                    f"查询文档过大：最多 {MAX_TOKENS} 个记号（字段、别名、括号等），请拆分查询",
                )
        return data

    async def run(self, request, context=UNSET, root_value=UNSET):
        try:
            if not isinstance(context, GraphQLContext) or context.reads is None:
                return await super().run(request, context, root_value)
            request.state.graphql_fast = context
            try:
                response = await super().run(request, context, root_value)
                if not context.stale and not context.confirmed:
                    # No ledger statement checked the access version (`me`, code lists, reports,
                    # introspection, refusals): check it before answering from the cached caller.
                    assert context.access is not None  # a fast context always carries its cached caller
                    conn = await context.reads.connection()
                    context.stale = (
                        await conn.exec_driver_sql(VERSION_ONLY)
                    ).scalar() != context.access.version
            finally:
                request.state.graphql_fast = None
                await context.reads.close()
            if not context.stale:
                return response
            # The long way (context.py): this first answer is never sent.
            access_cache.forget(context.creds)
            again = await slow_context(request, context.session, context.creds)
            again.request, again.response = context.request, context.response
            again.background_tasks = context.background_tasks
            return await super().run(request, again, root_value)
        except QueryRefused as e:
            return JSON(
                {"data": None, "errors": [{"message": e.message, "extensions": {"code": e.code}}]},
                status_code=400,
            )
        except HTTPException as e:
            # strawberry refuses what it cannot read (variables that are not a JSON object, a mutation
            # over GET, a media type it doesn't take) as text/plain: answer problem+json like the rest.
            raise http_problem(e.status_code) from None

    async def process_result(self, request, result):
        context = getattr(request.state, "graphql_fast", None)
        if result.errors and isinstance(context, GraphQLContext) and context.reads is not None:
            context.stale = True  # any error on the fast way is answered again the long way
            return {}
        # A root field that met a database fault (executor.py) answers the whole request with its 503.
        for error in result.errors or ():
            if isinstance(error.original_error, Problem) and error.original_error.status == 503:
                raise error.original_error
        return await super().process_result(request, result)

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        if not request.app.state.settings.expose_docs:
            raise Problem(404, "route.not_found", "请求的地址不存在")
        # Our own page with local assets: strawberry's loads React and GraphiQL from a public CDN.
        return HTMLResponse(graphiql_html(request))


# Not in OpenAPI (GraphQL has its own contract, schemas/schema.graphql); no subscriptions.
graphql_router = OnetableGraphQLRouter(
    schema, context_getter=get_context, include_in_schema=False, subscription_protocols=()
)
graphql_router.routes[:] = [r for r in graphql_router.routes if not isinstance(r, APIWebSocketRoute)]
