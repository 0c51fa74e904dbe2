"""Grant administration: validate against the catalogue and org tables, store, audit every change."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access import audit
from app.access.models import Grant
from app.access.schemas import GrantIn
from app.auth.principal import Principal
from app.catalog.loader import get_catalog
from app.errors import FieldError, invalid, not_found
from app.org import queries as org_queries
from app.org.models import ServiceAccount
from app.org.service import is_region_code

ROLES = {"platform_admin", "dept_admin", "dept_staff", "township_admin", "township_staff", "village_staff"}


async def create_grant(session: AsyncSession, actor: Principal, body: GrantIn) -> Grant:
    errors: list[FieldError] = []
    cat = get_catalog()
    lg = cat.ledger(body.ledger) if body.ledger != "*" else None
    if body.ledger != "*" and lg is None:
        errors.append(FieldError("body.ledger", "ledger.not_found", "台账不存在"))
    if body.field != "*" and (lg is None or lg.field(body.field) is None):
        errors.append(FieldError("body.field", "field.unknown", "字段不存在（指定字段时须指定台账）"))
    if body.row_scope == "regions":
        if not body.regions:
            errors.append(FieldError("body.regions", "field.required", "指定区划范围时须列出区划代码"))
        errors += [
            FieldError(f"body.regions.{i}", "region.bad_code", "区划代码应为12位数字")
            for i, c in enumerate(body.regions)
            if not is_region_code(c)
        ]
    grant = Grant(
        ledger=body.ledger,
        field=body.field,
        level=body.level,
        allow_lookup=body.allow_lookup,
        row_scope=body.row_scope,
        regions=body.regions,
        note=body.note,
        grantee_type=body.grantee_type,
        created_by=actor.actor,
    )
    if body.grantee_type == "role":
        if body.role not in ROLES:
            errors.append(FieldError("body.role", "role.unknown", "角色不存在"))
        grant.role = body.role
    if body.org_unit_code is not None or body.grantee_type == "org_unit":
        unit = await org_queries.org_unit_by_code(session, body.org_unit_code or "")
        if unit is None:
            errors.append(FieldError("body.org_unit_code", "org_unit.not_found", "单位不存在"))
        else:
            grant.org_unit_id = unit.id
    if body.grantee_type == "user":
        user = await org_queries.user_by_username(session, body.username or "")
        if user is None:
            errors.append(FieldError("body.username", "user.not_found", "用户不存在"))
        else:
            grant.user_id = user.id
    if body.grantee_type == "service_account":
        sa = await session.scalar(
            select(ServiceAccount).where(ServiceAccount.name == (body.service_account or ""))
        )
        if sa is None:
            errors.append(FieldError("body.service_account", "service_account.not_found", "服务账号不存在"))
        else:
            grant.service_account_id = sa.id
    if errors:
        raise invalid(errors, "授权内容有误")
    session.add(grant)
    await session.flush()
    await audit.append(
        session,
        actor=actor.actor,
        action="grant.create",
        path="rest",
        ledger=None if body.ledger == "*" else body.ledger,
        detail={"grant_id": grant.id, **body.model_dump(mode="json")},
    )
    return grant


async def list_grants(
    session: AsyncSession, *, ledger: str | None, grantee_type: str | None
) -> Sequence[Grant]:
    stmt = select(Grant).order_by(Grant.id)
    if ledger:
        stmt = stmt.where(Grant.ledger == ledger)
    if grantee_type:
        stmt = stmt.where(Grant.grantee_type == grantee_type)
    return (await session.scalars(stmt)).all()


async def delete_grant(session: AsyncSession, actor: Principal, grant_id: int) -> None:
    grant = await session.get(Grant, grant_id)
    if grant is None:
        raise not_found("授权")
    snapshot = {c.name: getattr(grant, c.name) for c in Grant.__table__.columns if c.name != "created_at"}
    await session.execute(delete(Grant).where(Grant.id == grant_id))
    await audit.append(
        session,
        actor=actor.actor,
        action="grant.delete",
        path="rest",
        ledger=None if grant.ledger == "*" else grant.ledger,
        detail={"grant": snapshot},
    )
