"""REST get one / list for callers whose access is cached: one statement, no transaction.

`answer` tries the single-statement read (app/db/fast.py) with the cached caller and falls back to
the long way (a transaction that reads the catalogue, the caller and the grants again, and refreshes
the cache) whenever that read cannot answer: another access version, no row (a 404 or an empty page
is always confirmed the long way, so no answer is ever derived from a stale state), a refusal, a
dropped connection. Both ways build the same statements (service.read_statement / list_statement)
from the same LedgerPolicy and audit the same reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import BigInteger, bindparam
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.access import cache
from app.access.audit import audit_read
from app.access.cache import Access
from app.auth.principal import Credentials, Principal
from app.catalog.admission import live as catalog_live
from app.catalog.loader import IN_EFFECT
from app.db.engine import session_scope
from app.db.fast import VERSION_PARAM, Reads, Stale, access_guard, compile_text, is_disconnect
from app.errors import Problem
from app.ledger import service

T = TypeVar("T")


async def answer(
    request: Request,
    creds: Credentials,
    fast: Callable[[Reads, Access], Awaitable[T]],
    slow: Callable[[AsyncSession, Principal], Awaitable[T]],
) -> T:
    """The fast way if the caller is cached and it can answer, else the long way in one transaction
    (committed before the answer is returned, so before it is sent)."""
    access = cache.lookup(creds)
    maker = request.app.state.sessionmaker
    if access is not None:
        IN_EFFECT.set(access.catalog)
        request.state.principal = access.principal
        try:
            async with session_scope(maker) as session, Reads(request, session) as reads:
                return await fast(reads, access)
        except (Stale, Problem):
            pass
        except DBAPIError as exc:
            if not is_disconnect(exc):
                raise
    async with session_scope(maker) as session:
        await catalog_live.enter(session)
        access = await cache.load(session, request.app.state.settings, creds)
        cache.seed_session(session, access)
        request.state.principal = access.principal
        return await slow(session, access.principal)


async def get_record(reads: Reads, access: Access, ledger: str, record_id: int) -> dict[str, Any]:
    policy = access.policy(ledger)
    conn = await reads.connection()

    def build() -> tuple[str, dict[str, Any]]:
        stmt = service.read_statement(policy, bindparam("record_id", type_=BigInteger)).where(access_guard())
        return compile_text(stmt, conn.dialect, {"record_id": 0, VERSION_PARAM: 0})

    sql, params = access.memo(("rest.get", ledger), build)
    row = (
        await conn.exec_driver_sql(sql, {**params, "record_id": record_id, VERSION_PARAM: access.version})
    ).first()
    if row is None:  # no such record for this reader, or another access version: the long way says which
        raise Stale
    record = service.record_of(
        policy, row, access.memo(("rest.hidden", ledger), lambda: service.hidden_codes(policy))
    )
    await audit_read(conn, policy, [record_id], "rest")
    return record


async def list_records(
    reads: Reads,
    access: Access,
    ledger: str,
    params: list[tuple[str, str]],
    *,
    order: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    policy = access.policy(ledger)
    stmt, keys = service.list_statement(policy, params, order=order, limit=limit, cursor=cursor)
    conn = await reads.connection()
    rows = (await conn.execute(stmt.where(access_guard()), {VERSION_PARAM: access.version})).all()
    if not rows:  # an empty page, or another access version
        raise Stale
    return await service.list_page(conn, policy, keys, rows, limit)
