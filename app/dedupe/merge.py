"""Accepting a candidate: merge with survivorship, re-point links, soft-delete the loser; and undo.

Survivorship, per field, among the non-empty values of both sides:
1. owner: a field the catalogue gives to a department or the platform (`owner`, `source`) keeps the
   value its owner set (provenance source), whichever side holds it;
2. recency: otherwise the value set most recently (provenance `at`; an incoming row counts as set
   when it was queued);
3. completeness: a value beats an empty one; a tie keeps the survivor's.
Fields derived from another (birth date from the ID number) follow the side their source came from.
Every value of both sides is kept in dedupe_merge.decisions; the loser stays, soft-deleted, with its
history, and the merge can be undone (fields edited since are reported, not overwritten).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, cast, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.audit import audit_write
from app.access.policy import LedgerPolicy, policy_for
from app.auth.principal import Principal
from app.catalog.coerce import clean_record
from app.catalog.loader import get_catalog
from app.catalog.model import Field
from app.db.ledger_tables import tables
from app.dedupe.models import DedupeCandidate, DedupeMerge
from app.errors import Problem, not_found
from app.ledger.history import jsonable, record_changes

SURVIVOR, LOSER = "survivor", "loser"


def _problem(status: int, code: str, title: str) -> Problem:
    return Problem(status, code, title)


def is_owner_source(f: Field, source: str | None) -> bool:
    """Did the field's owner set this value? A department's own code, or the platform source the
    catalogue names (city_platform pushes arrive as that source or as a platform system account)."""
    if not source or (f.owner is None and f.source == "township"):
        return False
    if source == f.source or (f.owner and source == f"department:{f.owner}"):
        return True
    return f.source == "city_platform" and source in ("platform", "city_platform")


def _at(prov: dict[str, Any] | None) -> str:
    return str((prov or {}).get("at") or "")


def _same(a: object, b: object) -> bool:
    if isinstance(a, (date, datetime)) or isinstance(b, (date, datetime)):
        return str(jsonable(a)) == str(jsonable(b))
    return a == b


def survive(
    fields: tuple[Field, ...],
    surv: dict[str, Any],
    surv_prov: dict[str, Any],
    other: dict[str, Any],
    other_prov: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """field -> {"from", "rule", "values": {survivor, loser}}; pure, so it is tested directly."""
    out: dict[str, dict[str, Any]] = {}
    for f in fields:
        a, b = surv.get(f.code), other.get(f.code)
        pa, pb = surv_prov.get(f.code), other_prov.get(f.code)
        values = {SURVIVOR: jsonable(a), LOSER: jsonable(b)}
        if b is None or _same(a, b):
            side, rule = SURVIVOR, "kept"
        elif a is None:
            side, rule = LOSER, "completeness"
        elif is_owner_source(f, (pa or {}).get("source")):
            side, rule = SURVIVOR, "owner"
        elif is_owner_source(f, (pb or {}).get("source")):
            side, rule = LOSER, "owner"
        elif _at(pb) > _at(pa):
            side, rule = LOSER, "recency"
        else:
            side, rule = SURVIVOR, "recency" if _at(pa) > _at(pb) else "kept"
        out[f.code] = {"from": side, "rule": rule, "values": values}
    by_code = {f.code: f for f in fields}
    for f in fields:  # derived fields go with their source's side
        for ref in f.derived_from:
            _, _, src = ref.partition(".")
            d = out.get(src)
            if d is not None and src in by_code and d["from"] == LOSER and other.get(f.code) is not None:
                out[f.code].update({"from": LOSER, "rule": "derived"})
    return out


async def _lock_record(session: AsyncSession, policy: LedgerPolicy, record_id: int) -> dict[str, Any]:
    t = policy.table
    row = (
        await session.execute(select(t).where(t.c.id == record_id, policy.scope_clause()).with_for_update())
    ).first()
    if row is None:
        raise _problem(409, "dedupe.record_gone", "候选记录已被删除或合并，请刷新后重试")
    return dict(row._mapping)


async def _relink(
    session: AsyncSession, ledger: str, loser: int, survivor: int, survivor_region: str
) -> list[dict[str, Any]]:
    """Move the loser's live links (and extension rows) to the survivor. A link the survivor already
    has (same pair, or a one-side it already fills) is removed instead; both kinds are recorded."""
    done: list[dict[str, Any]] = []
    cat = get_catalog()
    for rel, direction in cat.relations_of(ledger):
        t = tables().relations[rel.code]
        col = "from_id" if direction == "forward" else "to_id"
        links = (
            await session.execute(
                select(t.c.id, t.c.region_code).where(t.c[col] == loser, t.c.deleted_at.is_(None))
            )
        ).all()
        for link in links:
            values: dict[str, Any] = {col: survivor}
            if col == "from_id":  # a link row lives in the township of its "from" record
                values["region_code"] = survivor_region
            entry = {
                "relation": rel.code,
                "link_id": link.id,
                "column": col,
                "region_code": link.region_code,
            }
            try:
                async with session.begin_nested():
                    await session.execute(update(t).where(t.c.id == link.id).values(**values))
                entry["action"] = "moved"
            except IntegrityError:
                await session.execute(update(t).where(t.c.id == link.id).values(deleted_at=func.now()))
                entry["action"] = "dropped"
            done.append(entry)
    for ext in cat.extensions_of(ledger):
        t = tables().ledgers[ext.code]
        rows = (
            await session.execute(
                select(t.c.id, t.c.region_code).where(t.c.parent_id == loser, t.c.deleted_at.is_(None))
            )
        ).all()
        for r in rows:
            entry = {
                "extension": ext.code,
                "link_id": r.id,
                "column": "parent_id",
                "region_code": r.region_code,
            }
            try:
                async with session.begin_nested():
                    await session.execute(
                        update(t)
                        .where(t.c.id == r.id)
                        .values(parent_id=survivor, region_code=survivor_region, version=t.c.version + 1)
                    )
                entry["action"] = "moved"
            except IntegrityError:
                await session.execute(update(t).where(t.c.id == r.id).values(deleted_at=func.now()))
                entry["action"] = "dropped"
            done.append(entry)
    return done


def _table_of(entry: dict[str, Any]) -> Table:
    if "relation" in entry:
        return tables().relations[entry["relation"]]
    return tables().ledgers[entry["extension"]]


async def _candidate(
    session: AsyncSession, candidate_id: int, policy_ledger: str | None = None
) -> DedupeCandidate:
    cand = (
        await session.execute(
            select(DedupeCandidate).where(DedupeCandidate.id == candidate_id).with_for_update()
        )
    ).scalar_one_or_none()
    if cand is None or (policy_ledger and cand.ledger != policy_ledger):
        raise not_found("候选")
    return cand


async def _reviewer_policy(
    session: AsyncSession, principal: Principal, cand: DedupeCandidate
) -> LedgerPolicy:
    policy = await policy_for(session, principal, cand.ledger)
    if not policy.in_scope(cand.region_code):
        raise not_found("候选")  # outside the reviewer's area: same answer as absent
    if not policy.can_write_any():
        raise _problem(403, "dedupe.not_reviewer", "无权处理该台账的疑似重复记录")
    return policy


async def reject(session: AsyncSession, principal: Principal, candidate_id: int) -> dict[str, Any]:
    cand = await _candidate(session, candidate_id)
    await _reviewer_policy(session, principal, cand)
    if cand.status != "open":
        raise _problem(409, "dedupe.candidate_decided", "该疑似重复记录已处理")
    cand.status, cand.decided_by, cand.decided_at = (
        "rejected",
        principal.actor,
        datetime.now(UTC),
    )
    await session.flush()
    return {"id": cand.id, "status": cand.status}


async def accept(
    session: AsyncSession, principal: Principal, candidate_id: int, survivor_id: int | None = None
) -> dict[str, Any]:
    """Merge the pair. Survivor: the existing record (`record_id`) unless `survivor_id` names the
    other record of a record-record pair. An incoming row is merged into the record (no loser)."""
    cand = await _candidate(session, candidate_id)
    policy = await _reviewer_policy(session, principal, cand)
    if cand.status != "open":
        raise _problem(409, "dedupe.candidate_decided", "该疑似重复记录已处理")
    lg = policy.ledger
    t = policy.table
    pair = [cand.record_id] + ([cand.other_id] if cand.other_id is not None else [])
    if survivor_id is not None and survivor_id not in pair:
        raise _problem(422, "dedupe.bad_survivor", "保留记录须为候选中的一条")
    surv_id = survivor_id or cand.record_id
    loser_id = next((i for i in pair if i != surv_id), None)
    if loser_id is None and cand.incoming is None:
        raise _problem(
            409,
            "dedupe.nothing_to_merge",
            "该候选没有保存导入行的数据，无法合并，请在导入批次中处理",
        )
    for rid in sorted(pair):  # fixed order: two reviewers merging crossing pairs never deadlock
        await _lock_record(session, policy, rid)
    surv = await _lock_record(session, policy, surv_id)
    now = datetime.now(UTC).isoformat()
    if loser_id is not None:
        other = await _lock_record(session, policy, loser_id)
        other_prov = other["provenance"] or {}
    else:
        codes = {f.code for f in lg.fields}
        incoming = {k: v for k, v in (cand.incoming or {}).items() if k in codes}
        clean = clean_record(lg.fields, incoming, get_catalog(), partial=True)
        other = dict(clean.values)
        at = cand.created_at.isoformat() if cand.created_at else now
        other_prov = {c: {"source": cand.source, "at": at, "actor": principal.actor} for c in other}
    decisions = survive(lg.fields, surv, surv["provenance"] or {}, other, other_prov)
    changed = {c: other.get(c) for c, d in decisions.items() if d["from"] == LOSER}
    if loser_id is None:  # values from a sheet: the reviewer must be one who may write them
        policy.check_write(sorted(changed), "incoming")
    prov = {c: {**(other_prov.get(c) or {}), "merge": True} for c in changed}
    before = {
        "fields": {c: jsonable(surv.get(c)) for c in changed},
        "provenance": {c: (surv["provenance"] or {}).get(c) for c in changed},
        "version": surv["version"],
    }
    merge = DedupeMerge(
        candidate_id=cand.id,
        ledger=lg.code,
        survivor_id=surv_id,
        loser_id=loser_id,
        decisions=decisions,
        survivor_before=before,
        relinks=[],
        actor=principal.actor,
    )
    session.add(merge)
    await session.flush()
    source = f"dedupe:merge:{merge.id}"
    if loser_id is not None:  # first, so a unique value (ID number) can move to the survivor
        await session.execute(
            update(t)
            .where(t.c.id == loser_id)
            .values(deleted_at=func.now(), version=t.c.version + 1, updated_at=func.now())
        )
        await record_changes(
            session,
            ledger=lg.code,
            record_id=loser_id,
            region_code=other["region_code"],
            op="delete",
            changes=[(None, None, None)],
            principal=principal,
            source=source,
        )
        merge.relinks = await _relink(session, lg.code, loser_id, surv_id, surv["region_code"])
    if changed:
        try:
            async with session.begin_nested():
                await session.execute(
                    update(t)
                    .where(t.c.id == surv_id)
                    .values(
                        **changed,
                        version=t.c.version + 1,
                        updated_at=func.now(),
                        provenance=t.c.provenance.op("||")(cast(prov, JSONB)),
                    )
                )
        except IntegrityError:
            raise _problem(409, "dedupe.unique_conflict", "合并后的唯一标识与其他记录冲突") from None
        await record_changes(
            session,
            ledger=lg.code,
            record_id=surv_id,
            region_code=surv["region_code"],
            op="update",
            changes=[(c, surv.get(c), v) for c, v in changed.items()],
            principal=principal,
            source=source,
        )
    cand.status, cand.decided_by, cand.decided_at = (
        "merged",
        principal.actor,
        datetime.now(UTC),
    )
    await audit_write(session, principal, "dedupe.merge", lg.code, surv_id, list(changed))
    await session.flush()
    return {
        "merge_id": merge.id,
        "survivor_id": surv_id,
        "loser_id": loser_id,
        "changed": sorted(changed),
        "relinked": len(merge.relinks),
    }


async def undo(session: AsyncSession, principal: Principal, merge_id: int) -> dict[str, Any]:
    merge = (
        await session.execute(select(DedupeMerge).where(DedupeMerge.id == merge_id).with_for_update())
    ).scalar_one_or_none()
    if merge is None:
        raise not_found("合并记录")
    cand = await _candidate(session, merge.candidate_id)
    policy = await _reviewer_policy(session, principal, cand)
    if merge.undone_at is not None:
        raise _problem(409, "dedupe.merge_undone", "该合并已撤销")
    t = policy.table
    lg = policy.ledger
    surv = await _lock_record(session, policy, merge.survivor_id)
    source = f"dedupe:undo:{merge.id}"
    before = merge.survivor_before
    restore: dict[str, Any] = {}
    conflicts: list[str] = []
    raw_before = clean_record(
        lg.fields,
        {k: v for k, v in before["fields"].items() if v is not None},
        get_catalog(),
        partial=True,
    ).values
    for code in before["fields"]:
        merged_value = merge.decisions[code]["values"][LOSER]
        if str(jsonable(surv.get(code))) != str(merged_value):
            conflicts.append(code)  # edited since the merge: the newer value stays
        else:
            restore[code] = raw_before.get(code)
    if merge.loser_id is not None:
        try:
            async with session.begin_nested():
                await session.execute(
                    update(t)
                    .where(t.c.id == merge.loser_id)
                    .values(deleted_at=None, version=t.c.version + 1, updated_at=func.now())
                )
        except IntegrityError:
            raise _problem(
                409, "dedupe.unique_conflict", "被合并记录的唯一标识已被其他记录使用，无法撤销"
            ) from None
        loser_region = (
            await session.execute(select(t.c.region_code).where(t.c.id == merge.loser_id))
        ).scalar_one()
        await record_changes(
            session,
            ledger=lg.code,
            record_id=merge.loser_id,
            region_code=loser_region,
            op="restore",
            changes=[(None, None, None)],
            principal=principal,
            source=source,
        )
        for entry in merge.relinks:
            lt = _table_of(entry)
            values: dict[str, Any] = {
                entry["column"]: merge.loser_id,
                "region_code": entry["region_code"],
                "deleted_at": None,
            }
            try:
                async with session.begin_nested():
                    await session.execute(update(lt).where(lt.c.id == entry["link_id"]).values(**values))
            except IntegrityError:
                conflicts.append(f"{entry.get('relation') or entry.get('extension')}:{entry['link_id']}")
    if restore:
        prov_back = {c: p for c, p in before["provenance"].items() if c in restore and p is not None}
        gone = [c for c in restore if before["provenance"].get(c) is None]
        prov_expr: Any = t.c.provenance
        for c in gone:
            prov_expr = prov_expr.op("-")(c)
        await session.execute(
            update(t)
            .where(t.c.id == merge.survivor_id)
            .values(
                **restore,
                version=t.c.version + 1,
                updated_at=func.now(),
                provenance=prov_expr.op("||")(cast(prov_back, JSONB)),
            )
        )
        await record_changes(
            session,
            ledger=lg.code,
            record_id=merge.survivor_id,
            region_code=surv["region_code"],
            op="update",
            changes=[(c, surv.get(c), v) for c, v in restore.items()],
            principal=principal,
            source=source,
        )
    merge.undone_at, merge.undone_by = datetime.now(UTC), principal.actor
    cand.status, cand.decided_by, cand.decided_at = "open", None, None
    await audit_write(session, principal, "dedupe.undo", lg.code, merge.survivor_id, list(restore))
    await session.flush()
    return {"merge_id": merge.id, "restored": sorted(restore), "conflicts": conflicts}
