"""Seal the audit log into a hash chain, anchor its head elsewhere, verify both.

Requests insert audit rows unsealed and without a lock (app/access/audit.py). Ids come from the
identity sequence in insert order but rows become visible in commit order: while row 11 is
committed, row 10 may belong to a transaction still running, or to one that rolled back and left a
gap for ever. A chain in id order would have to wait for, or guess about, every such id. So the
chain is in *seal order*: each pass takes the committed unsealed rows it sees (by id, for a stable
order) and gives them the positions after the current head. A row whose transaction commits late is
sealed by a later pass at a later position; a rolled-back row never becomes visible and leaves no
trace. Nothing is ever placed before the head, so a sealed prefix never changes and verify walks it
by position: 1, 2, 3, ... with no holes.

Each row's hash covers its content and the previous position's hash (the digest is the one the
log used before migration 0014, which kept the old rows' hashes), so editing, removing or inserting
a sealed row breaks the chain at or right after it. Removing the newest rows leaves a valid but
shorter chain; the anchors (app/access/audit_anchor.py) catch that.

One chainer at a time: a pass holds a session-level advisory lock (pg_try_advisory_lock) across its
batches; the service's background task and `onetable audit chain` skip a pass while another process
holds it. The unique index on chain_pos is the backstop: two chainers racing past the lock would
collide on a position and one would roll back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.access.audit_anchor import Anchor, append_if_due, append_if_due_db
from app.access.audit_models import AuditEntry

log = logging.getLogger(__name__)

GENESIS = "0" * 64
CHAIN_LOCK_KEY = 0x0E7AB1E  # any constant: one chainer for the one chain
_T = AuditEntry.__table__

Db = AsyncSession | AsyncConnection  # both run Core statements; tests pass their session


def digest(prev_hash: str, e: Any) -> str:
    """SHA-256 of the row's content and the previous hash (e: an AuditEntry or a row of audit_log)."""
    body = [
        prev_hash,
        e.at.astimezone(UTC).isoformat(),
        e.actor,
        e.action,
        e.path,
        e.ledger,
        list(e.record_ids or []),
        list(e.fields or []),
        e.detail or {},
        e.request_id,
    ]
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class Head:
    pos: int  # 0: nothing sealed yet
    id: int | None
    hash: str


async def chain_head(db: Db) -> Head:
    row = (
        await db.execute(
            select(_T.c.chain_pos, _T.c.id, _T.c.hash)
            .where(_T.c.chain_pos.is_not(None))
            .order_by(_T.c.chain_pos.desc())
            .limit(1)
        )
    ).first()
    return Head(row.chain_pos, row.id, row.hash) if row else Head(0, None, GENESIS)


# No "chain_pos IS NULL" filter: sealing a sealed row must fail loudly (the trigger), not skip.
_SEAL = (
    update(_T)
    .where(_T.c.id == bindparam("b_id"))
    .values(chain_pos=bindparam("b_pos"), prev_hash=bindparam("b_prev"), hash=bindparam("b_hash"))
)


async def seal_pending(db: Db, batch: int = 1000) -> int:
    """Seal up to `batch` committed unsealed rows after the head, in the caller's transaction.

    The caller holds the chain lock (run_chainer) or is a test in its own transaction.
    """
    head = await chain_head(db)
    rows = (await db.execute(select(_T).where(_T.c.chain_pos.is_(None)).order_by(_T.c.id).limit(batch))).all()
    prev, pos, params = head.hash, head.pos, []
    for r in rows:
        pos += 1
        h = digest(prev, r)
        params.append({"b_id": r.id, "b_pos": pos, "b_prev": prev, "b_hash": h})
        prev = h
    if params:
        await db.execute(_SEAL, params)
    return len(params)


@dataclass(frozen=True)
class ChainRun:
    sealed: int
    head: Head
    anchored: bool


async def run_chainer(
    engine: AsyncEngine,
    *,
    anchor_file: Path | None = None,
    anchor_url: str | None = None,
    anchor_every: float = 60.0,
    force_anchor: bool = False,
    batch: int = 1000,
) -> ChainRun | None:
    """Seal everything committed, then anchor the head when due. None: another process is chaining."""
    async with engine.connect() as conn:
        got = await conn.scalar(select(func.pg_try_advisory_lock(CHAIN_LOCK_KEY)))
        await conn.commit()
        if not got:
            return None
        try:
            sealed = 0
            while True:
                n = await seal_pending(conn, batch)
                await conn.commit()
                sealed += n
                if n < batch:
                    break
            head = await chain_head(conn)
            await conn.commit()
            anchored = False
            if anchor_file is not None and head.pos > 0 and head.id is not None:
                # Still under the lock, so the anchors' positions only grow.
                anchored = await asyncio.to_thread(
                    append_if_due, anchor_file, head.pos, head.id, head.hash, anchor_every, force_anchor
                )
            if anchor_url is not None and head.pos > 0 and head.id is not None:
                anchored = (
                    await asyncio.to_thread(
                        append_if_due_db, anchor_url, head.pos, head.id, head.hash, anchor_every, force_anchor
                    )
                    or anchored
                )
            return ChainRun(sealed, head, anchored)
        finally:
            try:
                await conn.rollback()
                await conn.execute(select(func.pg_advisory_unlock(CHAIN_LOCK_KEY)))
                await conn.commit()
            except Exception:  # noqa: BLE001 - any failure here means the connection is unusable
                # The connection is gone, and the lock with its session; never pool it holding the lock.
                with contextlib.suppress(Exception):
                    await conn.invalidate()


async def chain_forever(
    engine: AsyncEngine,
    every: float,
    anchor_file: Path | None,
    anchor_every: float,
    anchor_url: str | None = None,
) -> None:
    """The service's background chainer: one pass every `every` seconds until cancelled.

    A failing pass (database down) is logged once per outage, not once per second.
    """
    failing = False
    while True:
        try:
            await run_chainer(
                engine, anchor_file=anchor_file, anchor_url=anchor_url, anchor_every=anchor_every
            )
            if failing:
                log.info("audit chainer: passes succeed again")
                failing = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep the service up; log once per failing streak
            if not failing:
                log.warning("audit chainer: pass failed (%s); retrying every %s s", type(exc).__name__, every)
                failing = True
        await asyncio.sleep(every)


@dataclass
class ChainReport:
    checked: int
    broken_at: int | None  # id of the first sealed row that does not match (or of the lost anchored row)
    reason: str | None
    unsealed: int = 0  # rows still waiting for the chainer (not covered by the chain yet)
    anchors: int = 0  # anchors found in the chain with their hash
    missing: tuple[int, int] | None = None  # chain positions lost from the tail, per the anchors

    @property
    def ok(self) -> bool:
        return self.reason is None


def _span(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}-{b}"


async def verify(db: Db, anchors: Sequence[Anchor] = (), batch: int = 5000) -> ChainReport:
    """Walk the sealed chain by position; check every link and hash, then the anchors against it."""
    unsealed = await db.scalar(select(func.count()).select_from(_T).where(_T.c.chain_pos.is_(None))) or 0
    at_pos: dict[int, list[Anchor]] = {}
    for a in anchors:
        at_pos.setdefault(a.pos, []).append(a)
    prev, pos, matched, last_matched = GENESIS, 0, 0, 0

    def bad(row_id: int, reason: str) -> ChainReport:
        return ChainReport(pos, row_id, reason, unsealed, matched)

    while True:
        rows = (
            await db.execute(select(_T).where(_T.c.chain_pos > pos).order_by(_T.c.chain_pos).limit(batch))
        ).all()
        if not rows:
            break
        for e in rows:
            if e.chain_pos != pos + 1:
                return bad(
                    e.id, f"chain position {_span(pos + 1, e.chain_pos - 1)} missing before it (row removed)"
                )
            if e.prev_hash != prev:
                return bad(e.id, "previous-hash link broken (row removed or inserted)")
            if digest(prev, e) != e.hash:
                return bad(e.id, "content does not match its hash (row edited)")
            for a in at_pos.get(e.chain_pos, ()):
                if (a.id, a.hash) != (e.id, e.hash):
                    return bad(
                        e.id,
                        f"differs from the anchor of {a.at} at position {a.pos} (anchored row id "
                        f"{a.id}): the chain was rewritten after position {last_matched}",
                    )
                matched, last_matched = matched + 1, a.pos
            prev, pos = e.hash, e.chain_pos
    beyond = [a for a in anchors if a.pos > pos]
    if beyond:
        top = max(beyond, key=lambda a: a.pos)
        return ChainReport(
            pos,
            top.id,
            f"tail truncated: the chain ends at position {pos} but the anchor of {top.at} "
            f"names position {top.pos} (row id {top.id}); positions {_span(pos + 1, top.pos)} missing",
            unsealed,
            matched,
            (pos + 1, top.pos),
        )
    return ChainReport(pos, None, None, unsealed, matched)
