"""Append to and query the audit log.

An append is one INSERT in the caller's transaction, with no lock and no hash: a write's audit row
commits or rolls back with the write, and a read's audit row commits before the response carrying
the values is sent (the request session commits before responding). Sealing the rows into the hash
chain, anchoring and verifying are app/access/audit_chain.py's, off the request path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import any_, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.access.audit_models import AuditEntry
from app.access.policy import LedgerPolicy
from app.auth.principal import Principal
from app.requests import request_id_var


async def append(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    path: str,
    ledger: str | None = None,
    record_ids: Iterable[int] = (),
    fields: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=datetime.now(UTC),
        actor=actor,
        action=action,
        path=path,
        ledger=ledger,
        record_ids=sorted(set(record_ids)),
        fields=sorted(set(fields)),
        detail=detail or {},
        request_id=request_id_var.get(),
    )
    session.add(entry)
    await session.flush()
    return entry


async def append_on(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    path: str,
    ledger: str | None = None,
    record_ids: Iterable[int] = (),
    fields: Iterable[str] = (),
) -> None:
    """The same append as one Core INSERT on a connection (the single-statement read paths of
    app/db/fast.py: in autocommit it is committed before the response carrying the values is sent)."""
    await conn.execute(
        insert(AuditEntry.__table__).values(
            at=datetime.now(UTC),
            actor=actor,
            action=action,
            path=path,
            ledger=ledger,
            record_ids=sorted(set(record_ids)),
            fields=sorted(set(fields)),
            detail={},
            request_id=request_id_var.get(),
        )
    )


async def audit_read(
    session: AsyncSession | AsyncConnection,
    policy: LedgerPolicy,
    record_ids: list[int],
    path: str,
    fields: list[str] | None = None,
) -> None:
    """Log a read that returned unmasked sensitive or secret values (nothing to log otherwise)."""
    plain = policy.plain_sensitive_fields
    if fields is not None:
        plain = [f for f in plain if f in fields]
    if plain and record_ids and isinstance(session, AsyncConnection):
        await append_on(
            session,
            actor=policy.principal.actor,
            action="read_sensitive",
            path=path,
            ledger=policy.ledger.code,
            record_ids=record_ids,
            fields=plain,
        )
    elif plain and record_ids and isinstance(session, AsyncSession):
        await append(
            session,
            actor=policy.principal.actor,
            action="read_sensitive",
            path=path,
            ledger=policy.ledger.code,
            record_ids=record_ids,
            fields=plain,
        )


async def audit_write(
    session: AsyncSession,
    principal: Principal,
    action: str,
    ledger: str,
    record_id: int,
    fields: Iterable[str],
    path: str = "rest",
) -> None:
    await append(
        session,
        actor=principal.actor,
        action=action,
        path=path,
        ledger=ledger,
        record_ids=[record_id],
        fields=[f for f in fields if f],
    )


async def query_log(
    session: AsyncSession,
    *,
    actor: str | None,
    action: str | None,
    ledger: str | None,
    record_id: int | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if ledger:
        stmt = stmt.where(AuditEntry.ledger == ledger)
    if record_id is not None:
        stmt = stmt.where(any_(AuditEntry.record_ids) == record_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list((await session.scalars(stmt)).all())
