"""Engines and sessions: one AsyncSession per request, committed once at the end by the dependency."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings
from app.db import faults

log = logging.getLogger(__name__)

_embedded_server = None  # kept referenced so the embedded server lives as long as the process


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// URLs; we always talk through psycopg 3."""
    u = make_url(url)
    if u.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def libpq_conninfo(url: str) -> str:
    """SQLAlchemy URL -> libpq URL (for psycopg used directly: COPY, CREATE DATABASE)."""
    u = make_url(normalise_url(url)).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


def ensure_database(url: str) -> None:
    """CREATE DATABASE if it does not exist (connecting to the server's postgres database)."""
    u = make_url(normalise_url(url))
    if not u.database:
        raise ValueError("the database URL names no database")
    admin = libpq_conninfo(u.set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(u.database)))
            log.info("created database %s", u.database)


def resolve_database_url(settings: Settings) -> str:
    """The URL to use: ONETABLE_DATABASE_URL, or an embedded server started in settings.data_dir."""
    global _embedded_server
    if settings.database_url:
        return normalise_url(settings.database_url)
    from app.db.embedded import embedded_url, start_embedded

    if _embedded_server is None:
        _embedded_server = start_embedded(settings.data_dir)
    url = embedded_url(_embedded_server, settings.database_name)
    ensure_database(url)
    return url


def make_engine(url: str, settings: Settings) -> AsyncEngine:
    """The service's engine: a bounded pool, per-connection timeouts, healing after outages.

    pool_pre_ping tests a pooled connection before handing it out; after an outage the first ping
    fails, SQLAlchemy drops every connection made before it, and the request gets a fresh one — so
    the service heals on the first request once PostgreSQL is back, without a restart.
    """
    options = (
        f"-c statement_timeout={settings.statement_timeout_ms} -c lock_timeout={settings.lock_timeout_ms}"
        f" -c idle_in_transaction_session_timeout={settings.idle_in_transaction_timeout_ms}"
    )
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
        connect_args={"options": options, "connect_timeout": settings.db_connect_timeout_seconds},
    )
    faults.RETRY_AFTER["unavailable"] = settings.db_retry_after_seconds

    @event.listens_for(engine.sync_engine, "connect")
    def _connected(dbapi_connection, connection_record) -> None:
        faults.outage.recovered()  # a new connection works: an outage (if any) is over

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Request-scoped session: commit once if the handler succeeded, roll back otherwise."""
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
