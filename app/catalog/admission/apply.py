"""Apply an approved proposal online: DDL, catalogue version and default grants in one transaction.

The approving request's transaction runs ALTER TABLE … ADD COLUMN (or CREATE TABLE for an extension),
inserts the next catalog_version row and the owner's grants; PostgreSQL DDL is transactional, so a
failure anywhere leaves neither the column nor the version behind. Adding a nullable column without
a default only changes the table's description (no rewrite), but it needs a brief exclusive lock:
lock_timeout bounds the wait behind long readers (the approval then answers 409, try again).
"""

from __future__ import annotations

import uuid

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Column, MetaData, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.levels import DEFAULT_FOR_SENSITIVITY, Level
from app.access.models import Grant
from app.auth.principal import Principal
from app.catalog.admission import live
from app.catalog.admission.models import CatalogProposal, CatalogVersion
from app.catalog.loader import IN_EFFECT, semantic_issues
from app.catalog.model import Catalog, Sensitivity
from app.db.base import Base
from app.db.ledger_tables import build_tables
from app.errors import Problem
from app.org.models import OrgUnit, ServiceAccount, User

LOCK_TIMEOUT = "5s"


def _as_dict(p: CatalogProposal) -> dict:
    return {
        "kind": p.kind,
        "ledger": p.ledger,
        "extension": p.extension,
        "fields": p.fields,
        "codelists": p.codelists,
    }


def _merged(current: Catalog, p: CatalogProposal, stamp: str) -> Catalog:
    """The catalogue after the proposal; refused if it no longer fits (another approval came first, or
    its names clash in the GraphQL schema, where ledger, relation and field names meet)."""
    merged = live.apply_proposal(current, _as_dict(p), stamp)
    issues: list = semantic_issues(merged, {})
    if not issues:
        from app.graphql.schema import build_schema

        token = IN_EFFECT.set(merged)
        try:
            merged.built["graphql_schema"] = build_schema()  # built once here, served from now on
        except Exception as exc:  # noqa: BLE001 - any clash refuses the approval, nothing is applied
            issues = [f"GraphQL: {exc}"]
        finally:
            IN_EFFECT.reset(token)
    if issues:
        raise Problem(
            409,
            "catalog.conflict",
            "该申请与当前数据目录冲突，不能准入",
            detail="; ".join(str(i).split(": ", 1)[-1] for i in issues)[:1000],
        )
    return merged


async def admit(session: AsyncSession, actor: Principal, p: CatalogProposal) -> int:
    """Apply proposal p; returns the new catalogue version. The caller marks the proposal approved."""
    newest = await session.scalar(
        select(CatalogVersion).order_by(CatalogVersion.version.desc()).limit(1).with_for_update()
    )  # one approval at a time
    current = await live.catalog_of(session)
    stamp = str(uuid.uuid4())
    merged = _merged(current, p, stamp)
    built = build_tables(merged, MetaData(naming_convention=Base.metadata.naming_convention))
    table = built.ledgers[p.ledger]
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    try:
        await session.run_sync(lambda s: _ddl(s.connection(), p, table))
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise Problem(409, "catalog.table_busy", "台账数据表正忙，请稍后重试") from exc
        raise
    await session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))  # the bound is for the DDL only
    version = (newest.version if newest else 1) + 1
    session.add(
        CatalogVersion(
            version=version,
            stamp=stamp,
            proposal_id=p.id,
            created_by=actor.actor,
            note=f"{p.kind} {p.ledger}: " + ", ".join(f["code"] for f in p.fields),
        )
    )
    await _default_grants(session, actor, merged, p)
    await session.flush()
    # The rest of this request (its response) already speaks the new catalogue.
    IN_EFFECT.set(live.remember(stamp, merged))
    return version


def _ddl(conn, p: CatalogProposal, table) -> None:
    if p.kind == "extension":
        table.create(conn)  # table, its indexes and comments
        return
    ops = Operations(MigrationContext.configure(conn))
    for f in p.fields:
        col = table.c[f["code"]]
        ops.add_column(table.name, Column(col.name, col.type, comment=col.comment))


async def _default_grants(session: AsyncSession, actor: Principal, cat: Catalog, p: CatalogProposal) -> None:
    """Grants that make the new items follow their sensitivity (docs/catalogue.md):
    - the owner department's units may write them (rows as the unit's grants on the ledger already say);
    - sensitive and secret items start at their default (masked, hidden) for everyone else, even for
      grantees that hold a `*` grant over the ledger; public and internal ones follow existing grants."""
    lg = cat.ledgers[p.ledger]
    note = f"数据项准入 #{p.id} 默认授权"
    by_owner: dict[str, list[str]] = {}
    for f in p.fields:
        by_owner.setdefault(f["owner"], []).append(f["code"])
    owner_units: set[int] = set()
    for owner, codes in by_owner.items():
        units = (await session.scalars(select(OrgUnit.id).where(OrgUnit.department_code == owner))).all()
        owner_units |= set(units)
        for unit in units:
            scope = await session.scalar(
                select(Grant)
                .where(
                    Grant.grantee_type == "org_unit",
                    Grant.org_unit_id == unit,
                    Grant.ledger.in_([lg.code, lg.parent or lg.code, "*"]),
                    Grant.level != "hidden",
                )
                .order_by((Grant.ledger == lg.code).desc(), Grant.id.desc())
                .limit(1)
            )
            for code in ["*"] if p.kind == "extension" else codes:
                session.add(
                    Grant(
                        grantee_type="org_unit",
                        org_unit_id=unit,
                        ledger=lg.code,
                        field=code,
                        level="write",
                        row_scope=scope.row_scope if scope else "own",
                        regions=list(scope.regions or []) if scope else [],
                        note=note,
                        created_by=actor.actor,
                    )
                )
    closed = [
        f for f in p.fields if Sensitivity(f["sensitivity"]) in (Sensitivity.sensitive, Sensitivity.secret)
    ]
    if not closed:
        return
    wide = (
        await session.scalars(
            select(Grant).where(Grant.ledger.in_([lg.code, "*"]), Grant.field == "*", Grant.level != "hidden")
        )
    ).all()
    units = sorted(owner_units) or [-1]
    insiders_users = set((await session.scalars(select(User.id).where(User.org_unit_id.in_(units)))).all())
    insiders_sas = set(
        (await session.scalars(select(ServiceAccount.id).where(ServiceAccount.org_unit_id.in_(units)))).all()
    )
    for g in wide:
        if (
            (g.org_unit_id in owner_units and g.grantee_type in ("org_unit", "role"))
            or (g.user_id in insiders_users)
            or (g.service_account_id in insiders_sas)
        ):
            continue  # the owner's own people
        for f in closed:
            cap = DEFAULT_FOR_SENSITIVITY[Sensitivity(f["sensitivity"])]
            if Level.parse(g.level) <= cap:
                continue
            session.add(
                Grant(
                    grantee_type=g.grantee_type,
                    role=g.role,
                    org_unit_id=g.org_unit_id,
                    user_id=g.user_id,
                    service_account_id=g.service_account_id,
                    ledger=lg.code,
                    field=f["code"],
                    level=cap.name,
                    allow_lookup=False,
                    row_scope=g.row_scope,
                    regions=list(g.regions or []),
                    note=note,
                    created_by=actor.actor,
                )
            )
