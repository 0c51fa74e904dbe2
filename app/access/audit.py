"""Append to and verify the hash-chained audit log.

Each row's hash covers its content and the previous row's hash, so editing, deleting or inserting
a row anywhere breaks every hash after it. Appends take a transaction-scoped advisory lock so the
chain stays linear under concurrent writers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.audit_models import AuditEntry
from app.access.policy import LedgerPolicy
from app.auth.principal import Principal
from app.requests import request_id_var

GENESIS = "0" * 64
_LOCK_KEY = 0x0E7AB1E  # any constant: one lock for the one chain


def digest(prev_hash: str, e: AuditEntry) -> str:
    body = [
        prev_hash, e.at.astimezone(timezone.utc).isoformat(), e.actor, e.action, e.path, e.ledger,
        list(e.record_ids or []), list(e.fields or []), e.detail or {}, e.request_id,
    ]
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def append(
    session: AsyncSession, *, actor: str, action: str, path: str, ledger: str | None = None,
    record_ids: Iterable[int] = (), fields: Iterable[str] = (), detail: dict | None = None,
) -> AuditEntry:
    await session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
    prev = await session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    entry = AuditEntry(
        at=datetime.now(timezone.utc), actor=actor, action=action, path=path, ledger=ledger,
        record_ids=sorted(set(record_ids)), fields=sorted(set(fields)), detail=detail or {},
        request_id=request_id_var.get(), prev_hash=prev or GENESIS,
    )
    entry.hash = digest(entry.prev_hash, entry)
    session.add(entry)
    await session.flush()
    return entry


async def audit_read(session: AsyncSession, policy: LedgerPolicy, record_ids: list[int], path: str,
                     fields: list[str] | None = None) -> None:
    """Log a read that returned unmasked sensitive or secret values (nothing to log otherwise)."""
    plain = policy.plain_sensitive_fields
    if fields is not None:
        plain = [f for f in plain if f in fields]
    if plain and record_ids:
        await append(session, actor=policy.principal.actor, action="read_sensitive", path=path,
                     ledger=policy.ledger.code, record_ids=record_ids, fields=plain)


async def audit_write(session: AsyncSession, principal: Principal, action: str, ledger: str, record_id: int,
                      fields: Iterable[str], path: str = "rest") -> None:
    await append(session, actor=principal.actor, action=action, path=path, ledger=ledger,
                 record_ids=[record_id], fields=[f for f in fields if f])


async def query_log(
    session: AsyncSession, *, actor: str | None, action: str | None, ledger: str | None, record_id: int | None,
    since: datetime | None, until: datetime | None, before_id: int | None, limit: int,
) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if ledger:
        stmt = stmt.where(AuditEntry.ledger == ledger)
    if record_id is not None:
        stmt = stmt.where(AuditEntry.record_ids.any(record_id))
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list((await session.scalars(stmt)).all())


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None  # id of the first row whose hash or link does not match
    reason: str | None


async def verify(session: AsyncSession, batch: int = 5000) -> ChainReport:
    prev, checked, last_id = GENESIS, 0, 0
    while True:
        rows = (await session.scalars(
            select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch))).all()
        if not rows:
            return ChainReport(checked, None, None)
        for e in rows:
            if e.prev_hash != prev:
                return ChainReport(checked, e.id, "previous-hash link broken (row removed or inserted)")
            if digest(prev, e) != e.hash:
                return ChainReport(checked, e.id, "content does not match its hash (row edited)")
            prev, checked, last_id = e.hash, checked + 1, e.id
