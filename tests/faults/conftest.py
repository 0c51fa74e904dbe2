"""The service as deployed (its own engine and pool, lifespan run), on a database of its own, reached
through a TCP proxy the test can cut. Requests commit for real; the shared test database stays clean."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.access.models import Grant
from app.config import Settings
from app.main import create_app
from tests.conftest import ROOT, _drop, _recreate
from tests.factories import auth_headers, make_org_unit, make_user
from tests.faults.proxy import CuttableProxy
from tests.world import A


@pytest.fixture(scope="module")
def faults_database(database_url: str):
    url = make_url(database_url)
    own = url.set(database=f"{url.database}_faults").render_as_string(hide_password=False)
    _recreate(own)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = own
    command.upgrade(cfg, "head")
    yield own
    _drop(own)


@pytest.fixture(scope="module")
async def township_headers(faults_database: str, settings: Settings) -> dict[str, str]:
    engine = create_async_engine(faults_database)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        unit = await make_org_unit(
            session, code=A + "000", name="临江镇", kind="township", region_code=A + "000"
        )
        user = await make_user(session, username="ta", org_unit=unit, roles=["township_admin"])
        session.add(
            Grant(
                grantee_type="role",
                role="township_admin",
                ledger="*",
                field="*",
                level="write",
                row_scope="own",
                created_by="test",
            )
        )
        await session.commit()
    await engine.dispose()
    return auth_headers(settings, user)


def proxied(url: str, port: int) -> str:
    """The same database, reached through the proxy on 127.0.0.1:port."""
    u = make_url(url)
    query = {k: v for k, v in u.query.items() if k not in ("host", "port")}
    return u.set(host="127.0.0.1", port=port, query=query).render_as_string(hide_password=False)


def target_of(url: str) -> tuple[str, int | None]:
    u = make_url(url)
    host = u.host or u.query.get("host") or "127.0.0.1"
    port = u.port or (int(u.query["port"]) if "port" in u.query else None)
    return str(host), port


@dataclass
class Running:
    client: httpx.AsyncClient
    proxy: CuttableProxy
    app: FastAPI


@pytest.fixture
def service(faults_database: str, settings: Settings) -> Callable:
    """service(**settings) -> async context giving a Running service started as in production."""

    @asynccontextmanager
    async def start(**overrides) -> AsyncIterator[Running]:
        proxy = CuttableProxy(*target_of(faults_database))
        await proxy.start()
        own = Settings(
            database_url=proxied(faults_database, proxy.port), secret_key=settings.secret_key, **overrides
        )
        app = create_app(own)
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://test", timeout=60
                ) as client:
                    yield Running(client, proxy, app)
        finally:
            await proxy.stop()

    return start


@pytest.fixture
def error_log(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog
