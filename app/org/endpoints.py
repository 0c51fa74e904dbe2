"""Org tree API: regions, org units, users, service accounts. Writes: platform administrators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from app.auth.deps import AppSettings, CurrentPrincipal, PlatformAdmin
from app.db.deps import Session
from app.org import queries, service
from app.org.models import OrgUnit, ServiceAccount, User
from app.org.schemas import (
    OrgKind,
    OrgUnitCreate,
    OrgUnitOut,
    OrgUnitRef,
    RegionOut,
    RegionUpsert,
    ServiceAccountCreate,
    ServiceAccountCreated,
    ServiceAccountOut,
    UserCreate,
    UserOut,
)
from app.params import BIGINT_MAX
from app.problem_responses import PROBLEM_CONTENT

router = APIRouter(tags=["组织机构"])

# FastAPI's `responses` takes dict[int | str, dict[str, Any]]; annotated so the literals match it.
Responses = dict[int | str, dict[str, Any]]
_AUTH: Responses = {
    401: {"description": "未登录或凭证无效", **PROBLEM_CONTENT},
    403: {"description": "需要平台管理员角色", **PROBLEM_CONTENT},
}
_WRITE: Responses = {**_AUTH, 422: {"description": "提交的数据未通过校验", **PROBLEM_CONTENT}}

RegionCode = Annotated[str, Path(pattern=r"^[0-9]{12}([0-9]{3})?$", description="区划代码")]
Limit = Annotated[int | None, Query(ge=1, description="每页条数，默认按系统配置，最多按系统上限")]
Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX, description="跳过的条数")]


def _page(settings, limit: int | None) -> int:
    return min(limit or settings.default_page_size, settings.max_page_size)


# --- regions ------------------------------------------------------------------------------------


@router.get(
    "/regions",
    response_model=list[RegionOut],
    summary="区划树：某区划的下级，或顶层区划",
    responses={**_AUTH, 404: {"description": "上级区划不存在", **PROBLEM_CONTENT}},
)
async def list_regions(
    _: CurrentPrincipal,
    session: Session,
    parent: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{12}([0-9]{3})?$", description="上级区划代码；省略时返回顶层区划"),
    ] = None,
) -> list[RegionOut]:
    return [RegionOut.model_validate(r) for r in await service.region_children(session, parent)]


@router.put(
    "/regions/{code}",
    response_model=RegionOut,
    summary="新增或更新区划",
    responses=_WRITE,
)
async def put_region(code: RegionCode, body: RegionUpsert, _: PlatformAdmin, session: Session) -> RegionOut:
    kwargs = {"parent_code": body.parent_code} if "parent_code" in body.model_fields_set else {}
    region = await service.upsert_region(session, code=code, name=body.name, **kwargs)
    return RegionOut.model_validate(region)


# --- org units ----------------------------------------------------------------------------------


@router.get("/org-units", response_model=list[OrgUnitOut], summary="机构列表", responses=_AUTH)
async def list_org_units(
    _: CurrentPrincipal,
    session: Session,
    settings: AppSettings,
    kind: Annotated[OrgKind | None, Query(description="按机构类型筛选")] = None,
    region: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{2,15}$", description="按管辖区划代码前缀筛选，如 500118101"),
    ] = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> list[OrgUnitOut]:
    units = await queries.list_org_units(
        session, kind=kind, region_prefix=region, limit=_page(settings, limit), offset=offset
    )
    return [OrgUnitOut.model_validate(u) for u in units]


@router.post(
    "/org-units",
    response_model=OrgUnitOut,
    status_code=status.HTTP_201_CREATED,
    summary="新建机构",
    responses={**_WRITE, 409: {"description": "机构代码已存在", **PROBLEM_CONTENT}},
)
async def create_org_unit(body: OrgUnitCreate, _: PlatformAdmin, session: Session) -> OrgUnitOut:
    unit = await service.create_org_unit(session, **body.model_dump())
    return OrgUnitOut.model_validate(unit)


# --- users --------------------------------------------------------------------------------------


@router.get("/users", response_model=list[UserOut], summary="用户列表", responses=_AUTH)
async def list_users(
    _: PlatformAdmin,
    session: Session,
    settings: AppSettings,
    org_unit: Annotated[str | None, Query(max_length=40, description="按所属机构代码筛选")] = None,
    active: Annotated[bool | None, Query(description="按是否启用筛选")] = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> list[UserOut]:
    rows = await queries.list_users(
        session, org_unit_code=org_unit, active=active, limit=_page(settings, limit), offset=offset
    )
    return [_user_out(u, o) for u, o in rows]


@router.post(
    "/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    summary="新建用户",
    responses={**_WRITE, 409: {"description": "用户名已被使用", **PROBLEM_CONTENT}},
)
async def create_user(body: UserCreate, _: PlatformAdmin, session: Session) -> UserOut:
    user = await service.create_user(session, **body.model_dump())
    unit = await session.get(OrgUnit, user.org_unit_id)  # loaded by the service: identity map hit
    return _user_out(user, unit)


UserId = Annotated[int, Path(ge=1, le=2**63 - 1, description="用户编号")]
_USER_ACTION: Responses = {**_AUTH, 404: {"description": "用户不存在", **PROBLEM_CONTENT}}


@router.post(
    "/users/{user_id}/deactivate",
    response_model=UserOut,
    summary="停用用户",
    description="停用后该用户不能登录，已签发的令牌立即失效（重新启用后也不恢复）。",
    responses={**_USER_ACTION, 409: {"description": "不能停用自己的账号", **PROBLEM_CONTENT}},
)
async def deactivate_user(user_id: UserId, admin: PlatformAdmin, session: Session) -> UserOut:
    user = await service.set_user_active(session, user_id, False, by_user_id=_own_user_id(admin))
    return _user_out(user, await session.get(OrgUnit, user.org_unit_id))


@router.post(
    "/users/{user_id}/activate",
    response_model=UserOut,
    summary="重新启用用户",
    responses=_USER_ACTION,
)
async def activate_user(user_id: UserId, admin: PlatformAdmin, session: Session) -> UserOut:
    user = await service.set_user_active(session, user_id, True, by_user_id=_own_user_id(admin))
    return _user_out(user, await session.get(OrgUnit, user.org_unit_id))


@router.post(
    "/users/{user_id}/unlock",
    response_model=UserOut,
    summary="解锁用户",
    description="解除因多次登录失败造成的锁定，并清零该账号的失败计数。",
    responses=_USER_ACTION,
)
async def unlock_user(user_id: UserId, _: PlatformAdmin, session: Session) -> UserOut:
    user = await service.unlock_user(session, user_id)
    return _user_out(user, await session.get(OrgUnit, user.org_unit_id))


def _own_user_id(principal) -> int | None:
    return principal.id if principal.kind == "user" else None


# --- service accounts ---------------------------------------------------------------------------


@router.get(
    "/service-accounts",
    response_model=list[ServiceAccountOut],
    summary="服务账号列表",
    responses=_AUTH,
)
async def list_service_accounts(
    _: PlatformAdmin,
    session: Session,
    settings: AppSettings,
    active: Annotated[bool | None, Query(description="按是否启用筛选")] = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> list[ServiceAccountOut]:
    rows = await queries.list_service_accounts(
        session, active=active, limit=_page(settings, limit), offset=offset
    )
    return [_account_out(a, o) for a, o in rows]


@router.post(
    "/service-accounts",
    response_model=ServiceAccountCreated,
    status_code=status.HTTP_201_CREATED,
    summary="新建服务账号（密钥只返回这一次）",
    responses={**_WRITE, 409: {"description": "服务账号名称已被使用", **PROBLEM_CONTENT}},
)
async def create_service_account(
    body: ServiceAccountCreate, _: PlatformAdmin, session: Session, response: Response
) -> ServiceAccountCreated:
    account, key = await service.create_service_account(
        session, name=body.name, org_unit_code=body.org_unit_code
    )
    unit = await session.get(OrgUnit, account.org_unit_id)
    response.headers["Cache-Control"] = "no-store"
    return ServiceAccountCreated(**_account_out(account, unit).model_dump(), api_key=key)


@router.delete(
    "/service-accounts/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="停用服务账号",
    responses={**_AUTH, 404: {"description": "服务账号不存在", **PROBLEM_CONTENT}},
)
async def deactivate_service_account(
    account_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="服务账号编号")],
    _: PlatformAdmin,
    session: Session,
) -> Response:
    await service.deactivate_service_account(session, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- helpers ------------------------------------------------------------------------------------


def _user_out(user: User, unit: OrgUnit | None) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        org_unit=OrgUnitRef.model_validate(unit),
        roles=list(user.roles or []),
        active=user.active,
        locked=user.locked_at is not None,
        created_at=user.created_at,
    )


def _account_out(account: ServiceAccount, unit: OrgUnit | None) -> ServiceAccountOut:
    return ServiceAccountOut(
        id=account.id,
        name=account.name,
        org_unit=OrgUnitRef.model_validate(unit),
        key_prefix=account.key_prefix,
        active=account.active,
        created_at=account.created_at,
    )
