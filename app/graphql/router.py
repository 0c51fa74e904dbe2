"""The /graphql endpoint (POST and GET queries, GraphiQL in the browser when docs are exposed)."""

from __future__ import annotations

from fastapi import Request
from fastapi.routing import APIWebSocketRoute
from starlette.responses import HTMLResponse, Response
from strawberry.fastapi import GraphQLRouter

from app.docs import graphiql_html
from app.errors import Problem
from app.jsonresponse import dumps
from app.graphql.context import get_context
from app.graphql.schema import schema


class OnetableGraphQLRouter(GraphQLRouter):
    def encode_json(self, data: object) -> bytes:
        # orjson passes the JSON PostgreSQL built (orjson.Fragment) through untouched; decimals in report
        # rows become numbers as in REST.
        return dumps(data)

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        if not request.app.state.settings.expose_docs:
            raise Problem(404, "route.not_found", "请求的地址不存在")
        # Our own page with local assets: strawberry's loads React and GraphiQL from a public CDN.
        return HTMLResponse(graphiql_html(request))


# Not in OpenAPI (GraphQL has its own contract, schemas/schema.graphql); no subscriptions.
graphql_router = OnetableGraphQLRouter(schema, context_getter=get_context, include_in_schema=False,
                                       subscription_protocols=())
graphql_router.routes[:] = [r for r in graphql_router.routes if not isinstance(r, APIWebSocketRoute)]
