"""/api/v1/grants (platform admins) and /api/v1/access/effective (why a field is what it is)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access import audit, grants
from app.access.models import Grant
from app.access.policy import policy_for
from app.access.schemas import EffectivePermissions, FieldPermission, GrantIn, GrantOut
from app.auth.deps import CurrentPrincipal, PlatformAdmin, principal_of
from app.auth.principal import Principal
from app.db.deps import Session
from app.errors import FieldError, Problem, invalid
from app.org import queries as org_queries
from app.org.models import OrgUnit, ServiceAccount
from app.params import PathId, QueryId

router = APIRouter(tags=["授权与审计"])


@router.get("/grants", response_model=list[GrantOut], summary="授权列表")
async def list_grants(
    session: Session, _: PlatformAdmin, ledger: str | None = None, grantee_type: str | None = None
) -> Sequence[Grant]:
    return await grants.list_grants(session, ledger=ledger, grantee_type=grantee_type)


@router.post("/grants", response_model=GrantOut, status_code=201, summary="新增授权")
async def create_grant(session: Session, admin: PlatformAdmin, body: GrantIn) -> Grant:
    return await grants.create_grant(session, admin, body)


@router.delete("/grants/{grant_id}", status_code=204, summary="撤销授权")
async def delete_grant(session: Session, admin: PlatformAdmin, grant_id: PathId) -> None:
    await grants.delete_grant(session, admin, grant_id)


@router.get(
    "/access/effective", response_model=EffectivePermissions, summary="某账号对某台账的实际权限及原因"
)
async def effective(
    session: Session,
    principal: CurrentPrincipal,
    ledger: Annotated[str, Query(description="台账代码")],
    username: Annotated[str | None, Query(description="查看该用户的权限（仅平台管理员）")] = None,
    service_account: Annotated[str | None, Query(description="查看该服务账号的权限（仅平台管理员）")] = None,
) -> EffectivePermissions:
    subject = principal
    if username or service_account:
        if not principal.is_platform_admin:
            raise Problem(403, "auth.role_required", "只有平台管理员可以查看他人的权限")
        subject = await _subject(session, username, service_account)
    policy = await policy_for(session, subject, ledger)
    return EffectivePermissions(
        principal=subject.actor,
        ledger=ledger,
        row_scope=list(policy.scope),
        row_scope_reason=policy.scope_reason,
        fields=[
            FieldPermission(
                field=fa.field.code,
                label=fa.field.label,
                sensitivity=fa.field.sensitivity.value,
                level=fa.level.name,
                mask=fa.mask.value if fa.level.name == "masked" else None,
                allow_lookup=fa.allow_lookup,
                reason=fa.reason,
            )
            for fa in policy.fields.values()
        ],
    )


async def _subject(session: AsyncSession, username: str | None, service_account: str | None) -> Principal:
    if username:
        user = await org_queries.user_by_username(session, username)
        if user is None:
            raise invalid([FieldError("query.username", "user.not_found", "用户不存在")])
        unit = await session.get(OrgUnit, user.org_unit_id)
        assert unit is not None  # org_unit_id is a NOT NULL foreign key
        return principal_of("user", user.id, user.username, unit, frozenset(user.roles or ()))
    sa = await session.scalar(select(ServiceAccount).where(ServiceAccount.name == service_account))
    if sa is None:
        raise invalid([FieldError("query.service_account", "service_account.not_found", "服务账号不存在")])
    unit = await session.get(OrgUnit, sa.org_unit_id)
    assert unit is not None  # org_unit_id is a NOT NULL foreign key
    return principal_of("service_account", sa.id, sa.name, unit, frozenset({"service"}))


@router.get("/audit", summary="审计日志查询")
async def audit_log(
    session: Session,
    _: PlatformAdmin,
    actor: str | None = None,
    action: str | None = None,
    ledger: str | None = None,
    record_id: QueryId = None,
    since: Annotated[datetime | None, Query(description="起始时间（含），ISO 8601")] = None,
    until: Annotated[datetime | None, Query(description="截止时间（不含），ISO 8601")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: QueryId = None,
) -> dict[str, Any]:
    rows = await audit.query_log(
        session,
        actor=actor,
        action=action,
        ledger=ledger,
        record_id=record_id,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [
            {
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "path": e.path,
                "ledger": e.ledger,
                "record_ids": e.record_ids,
                "fields": e.fields,
                "detail": e.detail,
                "request_id": e.request_id,
                "chain_pos": e.chain_pos,
                "hash": e.hash,
            }
            for e in rows
        ],
        "next_before_id": rows[-1].id if more and rows else None,
    }
