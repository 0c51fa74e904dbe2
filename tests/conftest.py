"""Test database: migrated once per session, every test inside a transaction that is rolled back.

Default: an embedded PostgreSQL in var/test (database onetable_test, recreated per session).
ONETABLE_TEST_DATABASE_URL points the suite at a real server instead (CI: PostgreSQL 15).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, settings as hypothesis_settings
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings
from app.db.engine import normalise_url

pytest_plugins = ["tests.world"]

# No timing asserts in tests: hypothesis's default 200 ms deadline per example is one, and it failed
# on a loaded machine (a validator example took 585 ms). Examples are judged by what they return.
hypothesis_settings.register_profile("onetable", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("onetable")

ROOT = Path(__file__).resolve().parents[1]
# Per process, so two test runs on one machine (or parallel helpers) never drop each other's database.
TEST_DB = f"onetable_test_{os.getpid()}"


def _server_url() -> str:
    url = os.environ.get("ONETABLE_TEST_DATABASE_URL")
    if url:
        return normalise_url(url)
    from app.db.embedded import embedded_url, start_embedded

    server = start_embedded(ROOT / "var" / "test")
    pytest.embedded_server = server  # keep a reference for the session
    return embedded_url(server, TEST_DB)


def _admin_conninfo(url: str) -> str:
    from app.db.engine import libpq_conninfo

    return libpq_conninfo(make_url(url).set(database="postgres").render_as_string(hide_password=False))


def _drop(url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_admin_conninfo(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(make_url(url).database))
        )


def _recreate(url: str) -> None:
    import psycopg
    from psycopg import sql

    _drop(url)
    with psycopg.connect(_admin_conninfo(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                sql.Identifier(make_url(url).database)
            )
        )


@contextmanager
def own_database(database_url: str, prefix: str) -> Iterator[tuple[str, Config]]:
    """A migrated database of its own beside the session's, for tests whose data must really commit
    (audit chain, CLI, online DDL); dropped afterwards. Yields its URL and Alembic config."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{os.getpid()}"
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    admin = _admin_conninfo(url)
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(drop)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")
    try:
        yield url, cfg
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(drop)


@pytest.fixture(scope="session")
def database_url():
    url = _server_url()
    _recreate(url)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")
    yield url
    if make_url(url).database.startswith("onetable_test_"):
        _drop(url)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # expose_docs: the suite checks introspection and the docs pages (off by default outside demo).
    return Settings(
        database_url=database_url, secret_key="test-secret-key-at-least-32-bytes-long!!", expose_docs=True
    )


@pytest.fixture(scope="session")
async def engine(database_url: str):
    eng = create_async_engine(database_url, pool_size=2, max_overflow=2)
    yield eng
    await eng.dispose()


@pytest.fixture
async def connection(engine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        trans = await conn.begin()
        yield conn
        await trans.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # Sessions join the test's outer transaction through savepoints: a request's commit stays
    # inside it and the whole test is rolled back at the end.
    return async_sessionmaker(
        bind=connection, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
async def session(sessionmaker) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest.fixture
def app(settings: Settings, sessionmaker):
    from app.main import create_app

    application = create_app(settings, manage_engine=False)
    application.state.sessionmaker = sessionmaker
    return application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.profile import LONG, TALLY

    if TALLY:
        parts = ", ".join(f"{k}={v}" for k, v in sorted(TALLY.items()))
        profile = "long" if LONG else "quick"
        terminalreporter.write_line(f"property examples: {sum(TALLY.values())} ({parts}; profile {profile})")
