"""create_app(): routers, /graphql, problem handlers, lifespan (engine + embedded PostgreSQL)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.config import Settings, get_settings
from app.errors import install_problem_handlers
from app.jsonresponse import JSON
from app.inputs import InputGuard
from app.requests import RequestIdMiddleware


def create_app(settings: Settings | None = None, *, manage_engine: bool = True) -> FastAPI:
    """manage_engine=False lets tests put their own sessionmaker on app.state."""
    settings = settings or get_settings()
    # Refuse to start with a missing, built-in or short JWT secret (demo mode excepted): a token
    # signed with a known key is a platform administrator's.
    settings.check_secret_key()
    logging.basicConfig(level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if not manage_engine:
            yield
            return
        from app.db.engine import make_engine, make_sessionmaker, resolve_database_url

        engine = make_engine(resolve_database_url(settings), settings)
        app.state.sessionmaker = make_sessionmaker(engine)
        yield
        await engine.dispose()

    app = FastAPI(
        title="一表通 Onetable",
        version="0.1.0",
        description="镇街一表通：标准化基础台账一次录入、按字段授权共享，报表由台账自动生成。",
        default_response_class=JSON,
        lifespan=lifespan,
        # /docs is app/docs.py's, with its assets served from here (no CDN).
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.add_middleware(InputGuard, settings=settings)
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app)
    if settings.expose_docs:
        from app.docs import install_docs

        install_docs(app)

    from app.access.endpoints import router as access_router
    from app.auth.endpoints import router as auth_router
    from app.catalog.endpoints import router as catalog_router
    from app.ledger.endpoints import relations_router
    from app.ledger.endpoints import router as ledger_router
    from app.org.endpoints import router as org_router
    from app.report.endpoints import routers as report_routers

    for r in (auth_router, org_router, access_router, catalog_router, ledger_router, relations_router,
              *report_routers):
        app.include_router(r, prefix="/api/v1")

    from app.graphql.router import graphql_router

    app.include_router(graphql_router, prefix="/graphql")

    from app.problem_responses import install as declare_problems

    declare_problems(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from app.web import install_web

    install_web(app, settings.web_dir)  # last: its fallback answers only what no route above did
    return app
