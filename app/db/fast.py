"""Single-statement reads for callers whose access is cached (app/access/cache.py).

A hot read (REST get one, REST list, a GraphQL root field) is one statement on an autocommit
connection: no BEGIN, no COMMIT, no pool pre-ping, no catalogue or caller query. The statement itself
checks the access version the cached caller was built from (ACCESS_GUARD, a one-time filter that
PostgreSQL evaluates once, in the statement's own snapshot), so the data and the version come from
the same snapshot: rows come back only if the caller's grants, account and the catalogue are still
those of the cache. Anything else (no row, another version, a dropped connection) makes the request
take the long way (a transaction that reads caller and grants again, with the pooled engine's
pre-ping) — see docs/performance.md.

The connection comes from a second engine (`app.state.read_engine`: autocommit, no pre-ping; a
disconnect invalidates its pool and the request is answered the long way). Without one (tests that
run every request inside one outer transaction) the request's own session connection is used.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from sqlalchemy import BigInteger, bindparam, event, literal_column
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from starlette.requests import Request

from app.config import Settings
from app.db import faults

VERSION_SQL = "(SELECT version FROM access_version WHERE id = 1)"
VERSION_PARAM = "access_version"


class Stale(Exception):
    """The fast path could not answer (another access version, no row, a dropped connection)."""


def access_guard() -> ColumnElement[bool]:
    """WHERE clause: the database's access version is the cached caller's (bound as VERSION_PARAM)."""
    return literal_column(VERSION_SQL, BigInteger) == bindparam(VERSION_PARAM, type_=BigInteger)


def compile_text(
    stmt: ClauseElement, dialect: Dialect, placeholders: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The statement as the driver receives it, and its parameters (to be run with exec_driver_sql,
    after replacing the `placeholders`: the parameters given per execution)."""
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    assert isinstance(compiled, SQLCompiler)
    if compiled._bind_processors:  # none for the types used here (psycopg adapts them); be safe
        raise AssertionError(f"bind processors for {sorted(compiled._bind_processors)}")
    return compiled.string, dict(compiled.construct_params(placeholders))


def make_read_engine(url: str, settings: Settings) -> AsyncEngine:
    options = (
        f"-c statement_timeout={settings.statement_timeout_ms} -c lock_timeout={settings.lock_timeout_ms}"
        f" -c idle_in_transaction_session_timeout={settings.idle_in_transaction_timeout_ms}"
    )
    engine = create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=False,
        connect_args={"options": options, "connect_timeout": settings.db_connect_timeout_seconds},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _connected(dbapi_connection: Any, connection_record: Any) -> None:
        faults.outage.recovered()

    return engine


class Reads:
    """The request's connection for single-statement reads, opened on first use, closed by `async with`."""

    def __init__(self, request: Request, session: AsyncSession):
        self.engine: AsyncEngine | None = getattr(request.app.state, "read_engine", None)
        self.session = session
        self._conn: AsyncConnection | None = None

    async def connection(self) -> AsyncConnection:
        if self._conn is None:
            if self.engine is None:
                self._conn = await self.session.connection()
            else:
                self._conn = await self.engine.connect()
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self.engine is not None:
            await conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def is_disconnect(exc: BaseException) -> bool:
    """A dropped connection of the read engine: answer the long way (its pre-ping heals)."""
    return bool(getattr(exc, "connection_invalidated", False)) or faults.problem_for(exc) is not None
