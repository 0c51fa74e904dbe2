"""The browser docs, served with every asset from this service (offline government networks).

/docs is Swagger UI with the files of the PyPI package fastapi-offline (Swagger UI 5, which renders
the OpenAPI 3.1 that FastAPI writes); GraphiQL (app/graphql/router.py) uses the files committed in
app/static/graphiql/. Both are mounted only when settings.expose_docs is on (demo mode by default).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_ASSETS = "/static/swagger-ui"
GRAPHIQL_ASSETS = "/static/graphiql"
GRAPHIQL_DIR = Path(__file__).parent / "static" / "graphiql"
_OAUTH2_REDIRECT = "/docs/oauth2-redirect"
# validatorUrl: Swagger UI would otherwise send the OpenAPI document to a public validator.
_SWAGGER_PARAMETERS = {"validatorUrl": None, "persistAuthorization": False}


def swagger_ui_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def root_path(request: Request) -> str:
    """The prefix a reverse proxy mounts the service under (uvicorn --root-path), for asset URLs."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def install_docs(app: FastAPI) -> None:
    app.mount(SWAGGER_ASSETS, StaticFiles(directory=swagger_ui_dir()), name="swagger-ui-assets")
    app.mount(GRAPHIQL_ASSETS, StaticFiles(directory=GRAPHIQL_DIR), name="graphiql-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = root_path(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API 文档",
            oauth2_redirect_url=f"{root}{_OAUTH2_REDIRECT}",
            swagger_js_url=f"{root}{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{SWAGGER_ASSETS}/favicon.png",
            swagger_ui_parameters=_SWAGGER_PARAMETERS,
        )

    @app.get(_OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def graphiql_html(request: Request) -> str:
    template = (Path(__file__).parent / "graphql" / "graphiql.html").read_text(encoding="utf-8")
    return template.replace("{{ASSETS}}", f"{root_path(request)}{GRAPHIQL_ASSETS}")
