"""Related records through relations (person.residence -> house) and thematic extensions.

The other side is read through its own ledger policy: its row scope and masks apply, so a relation
never shows more of a record than reading that record directly would.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access import audit
from app.access.audit import audit_read
from app.access.levels import Level
from app.access.policy import link_attribute_level, policy_for
from app.auth.principal import Principal
from app.catalog.coerce import clean_record
from app.catalog.loader import get_catalog
from app.catalog.model import Catalog, Field, Relation
from app.db.ledger_tables import tables
from app.errors import FieldError, Problem, invalid, not_found
from app.ledger.history import record_changes, source_of
from app.query import sources
from app.query.paths import hop


def resolve_name(catalog: Catalog, ledger: str, name: str) -> tuple[str, Relation | None, str]:
    """(other ledger, relation or None for an extension link, direction: forward|backward|extension|parent)."""
    h = hop(catalog, ledger, name)
    if h is None:
        raise Problem(
            404,
            "relation.not_found",
            "该台账没有此关联",
            errors=[FieldError("path.name", "relation.not_found", "关联名称不存在")],
        )
    return h.far, h.relation, h.direction


def _link_attributes(rel: Relation) -> list[Field]:
    return [f for f in rel.attributes if link_attribute_level(f) >= Level.read]


async def related_records(
    session: AsyncSession, principal: Principal, ledger: str, record_id: int, name: str, *, limit: int
) -> dict[str, Any]:
    catalog = get_catalog()
    this = await policy_for(session, principal, ledger)
    other_code, rel, direction = resolve_name(catalog, ledger, name)
    other = await policy_for(session, principal, other_code)
    t, o = sources.ledger_table(this), sources.ledger_table(other)
    me = (
        await session.execute(
            select(t.c.id, *([t.c.parent_id] if direction == "parent" else [])).where(
                t.c.id == record_id, this.scope_clause()
            )
        )
    ).first()
    if me is None:
        raise not_found()
    cols = other.select_columns()
    if rel is not None:
        link = sources.link_table(rel)
        near, far = (
            (link.c.from_id, link.c.to_id) if direction == "forward" else (link.c.to_id, link.c.from_id)
        )
        attrs = [link.c[f.code].label(f"link_{f.code}") for f in _link_attributes(rel)]
        stmt = (
            select(*cols, link.c.id.label("link_id"), *attrs)
            .join(link, and_(far == o.c.id, link.c.deleted_at.is_(None)))
            .where(near == record_id, other.scope_clause())
        )
    elif direction == "extension":
        stmt = select(*cols).where(o.c.parent_id == record_id, other.scope_clause())
    else:
        stmt = select(*cols).where(o.c.id == me.parent_id, other.scope_clause())
    rows = (await session.execute(stmt.order_by(o.c.id).limit(limit))).all()
    await audit_read(session, other, [r.id for r in rows], "rest")
    return {"ledger": other_code, "relation": name, "items": [dict(r._mapping) for r in rows]}


async def create_link(
    session: AsyncSession, principal: Principal, code: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Link two records. The link lives in the source record's area, so its writer must be able to
    write that record; the target only needs to be visible."""
    catalog = get_catalog()
    rel = catalog.relations.get(code)
    if rel is None:
        raise Problem(404, "relation.not_found", "关系不存在")
    src = await policy_for(session, principal, rel.source)
    dst = await policy_for(session, principal, rel.target)
    ids = {}
    for key in ("from_id", "to_id"):
        if not isinstance(body.get(key), int):
            raise invalid([FieldError(f"body.{key}", "field.required", "需要记录编号")])
        ids[key] = body[key]
    # KEY SHARE on the source: the link takes its region, so a concurrent move must not slip between.
    a = (
        await session.execute(
            select(src.table.c.region_code)
            .where(src.table.c.id == ids["from_id"], src.scope_clause())
            .with_for_update(read=True, key_share=True)
        )
    ).first()
    b = (
        await session.execute(
            select(dst.table.c.region_code).where(dst.table.c.id == ids["to_id"], dst.scope_clause())
        )
    ).first()
    if a is None or b is None:
        raise invalid(
            [
                FieldError(
                    "body.from_id" if a is None else "body.to_id", "record.not_found", "记录不存在或无权访问"
                )
            ]
        )
    if not src.can_write_any():
        raise Problem(403, "access.record_readonly", "无权修改该记录的关联")
    attrs = {k: v for k, v in body.items() if k not in ("from_id", "to_id")}
    clean = clean_record(rel.attributes, attrs, catalog, partial=True)
    if clean.errors:
        raise invalid([FieldError(f"body.{f}", c, m) for f, c, m in clean.errors])
    link = tables().relations[rel.code]
    try:
        async with session.begin_nested():
            row = (
                await session.execute(
                    insert(link).values(region_code=a.region_code, **ids, **clean.values).returning(link.c.id)
                )
            ).first()
    except IntegrityError as exc:
        raise _link_conflict(rel, exc) from None
    assert row is not None  # INSERT ... RETURNING gives the row or raises
    await _log_link(
        session, principal, rel, "link", row.id, ids["from_id"], ids["to_id"], a.region_code, b.region_code
    )
    return {"id": row.id, "relation": code, **ids, **clean.values}


def _link_conflict(rel: Relation, exc: IntegrityError) -> Problem:
    """A unique index of the link table said no: same pair twice, or a second link on a "one" side."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or ""
    side = {f"uq_{rel.table_name}_from": "from_id", f"uq_{rel.table_name}_to": "to_id"}.get(constraint)
    if side is None:
        return Problem(409, "relation.duplicate", "这两条记录已经关联")
    whose = "该记录" if side == "from_id" else "对方记录"
    return Problem(
        409,
        "relation.cardinality",
        f"一条记录只能有一个“{rel.label}”关联",
        errors=[
            FieldError(
                f"body.{side}", "relation.cardinality", f"{whose}已有“{rel.label}”关联，须先解除原关联"
            )
        ],
    )


async def _log_link(
    session: AsyncSession,
    principal: Principal,
    rel: Relation,
    op: str,
    link_id: int,
    from_id: int,
    to_id: int,
    from_region: str,
    to_region: str | None,
) -> None:
    """A link change is a change of both records: it shows in the history of each end (as the id of
    the other end) and in the audit log."""
    source = source_of(principal)
    ends = [
        (rel.source, from_id, from_region, rel.forward, to_id),
        (rel.target, to_id, to_region, rel.backward, from_id),
    ]
    for ledger, record_id, region, name, other in ends:
        if region is None:
            continue  # the other end's row is gone: nothing to show the change on
        before, after = (None, other) if op == "link" else (other, None)
        await record_changes(
            session,
            ledger=ledger,
            record_id=record_id,
            region_code=region,
            op=op,
            changes=[(name, before, after)],
            principal=principal,
            source=source,
        )
    await audit.append(
        session,
        actor=principal.actor,
        action=op,
        path="rest",
        ledger=rel.source,
        record_ids=[from_id],
        detail={"relation": rel.code, "link_id": link_id, "from_id": from_id, "to_id": to_id},
    )


async def delete_link(session: AsyncSession, principal: Principal, code: str, link_id: int) -> None:
    rel = get_catalog().relations.get(code)
    if rel is None:
        raise Problem(404, "relation.not_found", "关系不存在")
    src = await policy_for(session, principal, rel.source)
    if not src.can_write_any():
        raise Problem(403, "access.record_readonly", "无权修改该记录的关联")
    link = tables().relations[rel.code]
    row = (
        await session.execute(
            update(link)
            .where(link.c.id == link_id, link.c.deleted_at.is_(None), src.scope_clause(link))
            .values(deleted_at=func.now())
            .returning(link.c.from_id, link.c.to_id, link.c.region_code)
        )
    ).first()
    if row is None:
        raise not_found("关联")
    far = tables().ledgers[rel.target]
    to_region = (await session.execute(select(far.c.region_code).where(far.c.id == row.to_id))).scalar()
    await _log_link(
        session, principal, rel, "unlink", link_id, row.from_id, row.to_id, row.region_code, to_region
    )
