"""create_app(): routers, /graphql, problem handlers, lifespan (engine + embedded PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from sqlalchemy import text

from app.config import Settings, get_settings
from app.errors import install_problem_handlers
from app.inputs import InputGuard
from app.jsonresponse import JSON
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
        from app.db import engine as engines
        from app.db.embedded import watch
        from app.db.fast import make_read_engine

        url = engines.resolve_database_url(settings)
        engine = engines.make_engine(url, settings)
        app.state.sessionmaker = engines.make_sessionmaker(engine)
        # Single-statement reads of callers whose access is cached (app/db/fast.py).
        app.state.read_engine = make_read_engine(url, settings)
        background = []
        # The embedded server is the service's to keep alive: restarted when its postmaster dies.
        if engines._embedded_server is not None and settings.embedded_watch_seconds > 0:
            background.append(
                asyncio.create_task(watch(engines._embedded_server, settings.embedded_watch_seconds))
            )
        if settings.audit_chain_interval_seconds > 0:
            from app.access.audit_chain import chain_forever

            background.append(
                asyncio.create_task(
                    chain_forever(
                        engine,
                        settings.audit_chain_interval_seconds,
                        settings.audit_anchor_file,
                        settings.audit_anchor_interval_seconds,
                        settings.audit_anchor_url,
                    )
                )
            )
        # Everything built so far (catalogue, tables, GraphQL schema, routes: some 200,000 objects) lives
        # as long as the process: out of the collector's sight, a full collection no longer walks it on
        # the request path (it cost ~1-3 ms per GraphQL request on average, docs/performance.md).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.read_engine.dispose()
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
    from app.catalog.admission.endpoints import router as admission_router
    from app.catalog.endpoints import router as catalog_router
    from app.consolidation.endpoints import router as legacy_router
    from app.dedupe.endpoints import router as dedupe_router
    from app.imports.endpoints import router as imports_router
    from app.ledger.endpoints import relations_router, router as ledger_router
    from app.org.endpoints import router as org_router
    from app.push.endpoints import router as push_router
    from app.report.endpoints import routers as report_routers

    for r in (
        auth_router,
        org_router,
        access_router,
        catalog_router,
        admission_router,
        ledger_router,
        relations_router,
        push_router,
        legacy_router,
        *report_routers,
        dedupe_router,
        imports_router,
    ):
        app.include_router(r, prefix="/api/v1")

    from app.graphql.router import graphql_router

    app.include_router(graphql_router, prefix="/graphql")

    from app.problem_responses import install as declare_problems

    declare_problems(app)

    from app.catalog.openapi import install as declare_records

    declare_records(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> dict[str, str]:
        # Ready = the database answers; down -> 503 service.database_unavailable with Retry-After.
        async with request.app.state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
        return {"status": "ok"}

    from app.web import install_web

    install_web(app, settings.web_dir)  # last: its fallback answers only what no route above did
    return app
