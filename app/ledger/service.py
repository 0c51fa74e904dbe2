"""Record read/write for every ledger, always through the access policy. Services flush, never commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select, cast, func, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement

from app.access.audit import audit_read, audit_write
from app.access.policy import LedgerPolicy, policy_for
from app.auth.principal import Principal
from app.catalog.coerce import clean_record
from app.catalog.loader import get_catalog
from app.catalog.maintainers import check_maintained
from app.catalog.validators import ValueIssue, check_division_code
from app.errors import FieldError, Problem, invalid, not_found
from app.ledger import listing
from app.ledger.history import history_select, record_changes, source_of
from app.ledger.moves import check_move, move_dependents
from app.query import keyset, sources

BODY_META = {"region_code", "version", "parent_id"}


def _rows_to_dicts(rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    keys = [k for k in rows[0]._fields if not k.startswith("_sort_")]  # once per page, not per row
    n = len(keys)
    return [dict(zip(keys, r[:n], strict=True)) for r in rows]


def _issues(errors: list[tuple[str, str, str]]) -> Problem:
    return invalid([FieldError(f"body.{f}", code, msg) for f, code, msg in errors])


async def get_record(
    session: AsyncSession, principal: Principal, ledger: str, record_id: int
) -> dict[str, Any]:
    policy = await policy_for(session, principal, ledger)
    record = await _read(session, policy, record_id)
    await audit_read(session, policy, [record_id], "rest")
    return record


async def _read(session: AsyncSession, policy: LedgerPolicy, record_id: int) -> dict[str, Any]:
    row = (await session.execute(read_statement(policy, record_id))).first()
    if row is None:
        raise not_found()
    return record_of(policy, row)


def hidden_codes(policy: LedgerPolicy) -> list[str]:
    return [c for c in policy.fields if not policy.discloses_presence(c)]  # hidden, or masked `full`


def read_statement(policy: LedgerPolicy, record_id: int | ColumnElement[Any]) -> Select[Any]:
    """One record as the policy lets its reader see it (record_of turns the row into the answer)."""
    t = sources.ledger_table(policy)
    hidden = hidden_codes(policy)
    provenance = t.c.provenance if not hidden else t.c.provenance.op("-")(array(hidden))
    return select(*policy.select_columns(), provenance.label("provenance"), t.c.flags.label("flags")).where(
        t.c.id == record_id, policy.scope_clause()
    )


def record_of(policy: LedgerPolicy, row: Row[Any], hidden: list[str] | None = None) -> dict[str, Any]:
    hidden = hidden_codes(policy) if hidden is None else hidden
    out = dict(row._mapping)
    out["flags"] = {k: v for k, v in (out["flags"] or {}).items() if k not in hidden}
    return out


async def list_records(
    session: AsyncSession,
    principal: Principal,
    ledger: str,
    params: list[tuple[str, str]],
    *,
    order: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    policy = await policy_for(session, principal, ledger)
    stmt, keys = list_statement(policy, params, order=order, limit=limit, cursor=cursor)
    rows = (await session.execute(stmt)).all()
    return await list_page(session, policy, keys, rows, limit)


def list_statement(
    policy: LedgerPolicy, params: list[tuple[str, str]], *, order: str | None, limit: int, cursor: str | None
) -> tuple[Select[Any], list[keyset.SortKey]]:
    """A page of records (one more than `limit`, to know whether another page follows)."""
    where = listing.parse_filters(policy, params)
    keys = listing.parse_order(policy, order)
    stmt = select(*policy.select_columns(), *listing.sort_columns(keys)).where(policy.scope_clause(), *where)
    if cursor:
        stmt = stmt.where(keyset.keyset_clause(keys, cursor))
    return stmt.order_by(*keyset.order_by(keys)).limit(limit + 1), keys


async def list_page(
    db: AsyncSession | AsyncConnection,
    policy: LedgerPolicy,
    keys: list[keyset.SortKey],
    rows: Sequence[Row[Any]],
    limit: int,
) -> dict[str, Any]:
    """The answer for a page's rows, its read audited (on the session or the connection it was read on)."""
    more = len(rows) > limit
    rows = rows[:limit]
    await audit_read(db, policy, [r.id for r in rows], "rest")
    return {
        "items": _rows_to_dicts(rows),
        "next_cursor": listing.next_cursor(keys, rows[-1]) if more and rows else None,
        "limit": limit,
    }


def _check_region(raw: object) -> str:
    try:
        if not isinstance(raw, str):
            raise ValueIssue("division_code.format", "区划代码应为 12 位数字")
        return check_division_code(raw)
    except ValueIssue as issue:
        raise invalid([FieldError("body.region_code", issue.code, issue.message)]) from None


def _provenance(codes: Iterable[str], source: str, principal: Principal) -> dict[str, Any]:
    at = datetime.now(UTC).isoformat()
    return {c: {"source": source, "at": at, "actor": principal.actor} for c in codes}


async def _insert_or_conflict(
    session: AsyncSession, stmt: Executable, policy: LedgerPolicy
) -> Row[Any] | None:
    """Run a write in a savepoint; a unique violation becomes a 409 naming the field, never the value."""
    try:
        async with session.begin_nested():
            return (await session.execute(stmt)).first()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or ""
        prefix = f"uq_{policy.table.name}_"
        fld = constraint[len(prefix) :] if constraint.startswith(prefix) else None
        if fld == "parent":
            raise Problem(
                409,
                "record.duplicate",
                "该主体已有此专题台账记录",
                errors=[FieldError("body.parent_id", "record.duplicate", "已存在")],
            ) from None
        path = f"body.{fld}" if fld and policy.ledger.field(fld) else "body"
        raise Problem(
            409,
            "record.duplicate",
            "已存在相同标识的记录",
            errors=[FieldError(path, "record.duplicate", "该值已被其他记录使用")],
        ) from None


async def create_record(
    session: AsyncSession, principal: Principal, ledger: str, body: dict[str, Any]
) -> dict[str, Any]:
    policy = await policy_for(session, principal, ledger)
    lg = policy.ledger
    data = {k: v for k, v in body.items() if k not in BODY_META}
    policy.check_write(list(data.keys()))
    values: dict[str, Any] = {}
    if lg.kind == "extension":
        assert lg.parent is not None, "an extension ledger names its parent (catalogue check)"
        parent_policy = await policy_for(session, principal, lg.parent)
        pid = body.get("parent_id")
        if not isinstance(pid, int):
            raise invalid([FieldError("body.parent_id", "field.required", "需要所属主体记录编号")])
        # KEY SHARE: a concurrent move of the subject (which locks it FOR UPDATE) waits for this row,
        # or this waits for the move and then sees the new region; never a row left in the old area.
        parent = (
            await session.execute(
                select(parent_policy.table.c.region_code)
                .where(parent_policy.table.c.id == pid, parent_policy.scope_clause())
                .with_for_update(read=True, key_share=True)
            )
        ).first()
        if parent is None:
            raise invalid([FieldError("body.parent_id", "parent.not_found", "所属主体记录不存在或无权访问")])
        region = parent.region_code  # an extension row lives where its subject lives
        values["parent_id"] = pid
    else:
        region = _check_region(body.get("region_code"))
    policy.check_region_writable(region, "body.region_code")
    clean = clean_record(lg.fields, data, get_catalog(), partial=False)
    if clean.errors:
        raise _issues(clean.errors)
    policy.check_write([c for c in clean.values if c not in data])  # derived fields need write too
    source = source_of(principal)
    set_codes = [c for c, v in clean.values.items() if v is not None]
    values.update(clean.values)
    values.update(region_code=region, provenance=_provenance(set_codes, source, principal), flags=clean.flags)
    row = await _insert_or_conflict(
        session, insert(policy.table).values(**values).returning(policy.table.c.id), policy
    )
    assert row is not None  # INSERT ... RETURNING gives the row or raises
    record_id = row.id
    await record_changes(
        session,
        ledger=lg.code,
        record_id=record_id,
        region_code=region,
        op="create",
        changes=[(c, None, clean.values[c]) for c in set_codes],
        principal=principal,
        source=source,
    )
    await audit_write(session, principal, "create", lg.code, record_id, set_codes)
    return await _read(session, policy, record_id)


def _expected_version(body: dict[str, Any], if_match: str | None) -> int:
    raw = if_match.removeprefix("W/").strip('"') if if_match else body.get("version")
    if raw is not None:
        try:
            return int(raw)
        except (TypeError, ValueError):
            pass
    raise Problem(
        428,
        "record.version_required",
        "修改前需提供记录版本号（If-Match 或 version）",
        errors=[FieldError("header.If-Match", "record.version_required", "缺少版本号")],
    )


async def _lock(session: AsyncSession, policy: LedgerPolicy, record_id: int) -> Row[Any]:
    t = policy.table
    field_cols = [t.c[f.code] for f in policy.ledger.fields]
    row = (
        await session.execute(
            select(t.c.id, t.c.version, t.c.region_code, t.c.provenance, *field_cols)
            .where(t.c.id == record_id, policy.scope_clause())
            .with_for_update()
        )
    ).first()
    if row is None:
        raise not_found()
    return row


def _conflict(current_version: int) -> Problem:
    return Problem(
        409,
        "record.version_conflict",
        "记录已被他人修改，请刷新后再提交",
        extra={"current_version": current_version},
    )


async def update_record(
    session: AsyncSession,
    principal: Principal,
    ledger: str,
    record_id: int,
    body: dict[str, Any],
    if_match: str | None,
    *,
    source: str | None = None,
) -> dict[str, Any]:
    """source: provenance/history source instead of the principal's own (e.g. "report:task:12" for a
    report's write-back), so the record shows which task set the value."""
    policy = await policy_for(session, principal, ledger)
    lg = policy.ledger
    expected = _expected_version(body, if_match)
    data = {k: v for k, v in body.items() if k not in BODY_META}
    policy.check_write(list(data.keys()))
    row = await _lock(session, policy, record_id)
    if row.version != expected:
        raise _conflict(row.version)
    current = dict(row._mapping)
    new_region = None
    if "region_code" in body and lg.kind != "extension":
        new_region = _check_region(body["region_code"])
        # Row scope holds on both ends: nothing moves out of, or into, an area the caller can't write.
        check_move(policy, new_region)
    clean = clean_record(lg.fields, data, get_catalog(), partial=True, current=current)
    if clean.errors:
        raise _issues(clean.errors)
    changed = {c: v for c, v in clean.values.items() if current.get(c) != v}
    policy.check_write([c for c in changed if c not in data])
    # 由残联维护: a value its department's system delivered is that department's to change.
    check_maintained(principal, lg, changed, current.get("provenance"), get_catalog())
    changes: list[tuple[str, object, object]] = [(c, current.get(c), v) for c, v in changed.items()]
    if new_region and new_region != row.region_code:
        changes.append(("region_code", row.region_code, new_region))
    if not changes:
        return await _read(session, policy, record_id)
    source = source or source_of(principal)
    t = policy.table
    flags_expr = t.c.flags.op("-")(array(list(changed) or [""])).op("||")(
        cast({c: clean.flags[c] for c in changed if c in clean.flags}, JSONB)
    )
    values = dict(changed)
    values.update(
        version=t.c.version + 1,
        updated_at=func.now(),
        flags=flags_expr,
        provenance=t.c.provenance.op("||")(cast(_provenance(changed, source, principal), JSONB)),
    )
    moving = new_region is not None and new_region != row.region_code
    if moving:
        values["region_code"] = new_region
    stmt = update(t).where(t.c.id == record_id, t.c.version == expected).values(**values).returning(t.c.id)
    if await _insert_or_conflict(session, stmt, policy) is None:
        raise _conflict(row.version)
    if moving and new_region is not None:
        await move_dependents(
            session, principal, lg.code, record_id, row.region_code, new_region, source=source
        )
    await record_changes(
        session,
        ledger=lg.code,
        record_id=record_id,
        region_code=new_region or row.region_code,
        op="update",
        changes=changes,
        principal=principal,
        source=source,
    )
    await audit_write(session, principal, "update", lg.code, record_id, [c for c, _, _ in changes])
    return await _read(session, policy, record_id)


async def delete_record(
    session: AsyncSession, principal: Principal, ledger: str, record_id: int, if_match: str | None
) -> None:
    """Soft delete: the row stays (with its history) but leaves every read path."""
    policy = await policy_for(session, principal, ledger)
    row = await _lock(session, policy, record_id)
    if not policy.can_write_any():
        raise Problem(403, "access.record_readonly", "无权删除该记录")
    if if_match is not None and _expected_version({}, if_match) != row.version:
        raise _conflict(row.version)
    t = policy.table
    await session.execute(
        update(t)
        .where(t.c.id == record_id)
        .values(deleted_at=func.now(), version=t.c.version + 1, updated_at=func.now())
    )
    await record_changes(
        session,
        ledger=policy.ledger.code,
        record_id=record_id,
        region_code=row.region_code,
        op="delete",
        changes=[(None, None, None)],
        principal=principal,
        source=source_of(principal),
    )
    await audit_write(session, principal, "delete", policy.ledger.code, record_id, [])


async def record_history(
    session: AsyncSession,
    principal: Principal,
    ledger: str,
    record_id: int,
    *,
    limit: int,
    before: int | None,
) -> dict[str, Any]:
    policy = await policy_for(session, principal, ledger)
    t = sources.ledger_table(policy)
    exists = (
        await session.execute(
            select(t.c.id).where(t.c.id == record_id, policy.scope_clause(include_deleted=True))
        )
    ).first()
    if exists is None:
        raise not_found()
    links = {}
    for rel, direction in get_catalog().relations_of(ledger):
        name, other = (rel.forward, rel.target) if direction == "forward" else (rel.backward, rel.source)
        links[name] = await policy_for(session, principal, other)
    rows = (await session.execute(history_select(policy, record_id, limit + 1, before, links))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    await audit_read(session, policy, [record_id] if rows else [], "rest", fields=[r.field for r in rows])
    return {"items": [dict(r._mapping) for r in rows], "next_before": rows[-1].id if more and rows else None}


__all__ = ["create_record", "delete_record", "get_record", "list_records", "record_history", "update_record"]
