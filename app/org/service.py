"""Org tree and identities: create org units, users and service accounts; keep regions.

Services flush, never commit: the request (or CLI command) owns the transaction. Problems carry the
field path of the request body and never echo the submitted value.
"""

from __future__ import annotations

from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_password, new_api_key
from app.catalog.loader import get_catalog
from app.errors import FieldError, Problem, invalid, not_found
from app.org import queries
from app.org.models import OrgUnit, Region, ServiceAccount, User
from app.org.regions import LEVEL_LENGTHS, region_level

ORG_KINDS = ("platform", "department", "township", "village")

# Each role belongs to one kind of org unit: a township_admin acts for a township office, etc.
ROLE_ORG_KIND: dict[str, str] = {
    "platform_admin": "platform",
    "dept_admin": "department",
    "dept_staff": "department",
    "township_admin": "township",
    "township_staff": "township",
    "village_staff": "village",
}
KNOWN_ROLES = frozenset(ROLE_ORG_KIND)

MIN_PASSWORD_LENGTH = 8

_DERIVE = object()  # upsert_region: derive parent_code from the code


# --- regions ------------------------------------------------------------------------------------


def parent_region_code(code: str) -> str | None:
    """The code of the enclosing region: 500118101001 -> 500118101000, a grid -> its village."""
    if len(code) > 12:
        return code[:12]
    level = region_level(code)
    if level <= 1:
        return None
    return code[: LEVEL_LENGTHS[level - 2]].ljust(12, "0")


def is_region_code(code: str) -> bool:
    """12 digits (province … village) or 15 (grid, whose last three digits are not all zero)."""
    if not (code.isascii() and code.isdigit()):
        return False
    return len(code) == 12 or (len(code) == 15 and code[12:] != "000")


def _check_region_code(code: str, path: str) -> None:
    if not is_region_code(code):
        raise invalid([FieldError(path, "region.bad_code", "区划代码应为12位（网格15位）数字")])


async def upsert_region(
    session: AsyncSession, *, code: str, name: str, parent_code: str | object | None = _DERIVE
) -> Region:
    """Insert or rename a region. Level comes from the code; the parent too unless given."""
    _check_region_code(code, "body.code")
    if parent_code is _DERIVE:
        parent_code = parent_region_code(code)
    elif parent_code is not None:
        _check_region_code(parent_code, "body.parent_code")  # type: ignore[arg-type]
    return await queries.upsert_region(
        session,
        code=code,
        name=name,
        level=region_level(code),
        parent_code=parent_code,  # type: ignore[arg-type]
    )


async def region_children(session: AsyncSession, parent_code: str | None) -> list[Region]:
    children = list(await queries.region_children(session, parent_code))
    if not children and parent_code is not None and not await queries.region_exists(session, parent_code):
        raise not_found("区划")
    return children


# --- org units ----------------------------------------------------------------------------------


async def create_org_unit(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    kind: str,
    region_code: str,
    department_code: str | None = None,
) -> OrgUnit:
    errors: list[FieldError] = []
    if kind not in ORG_KINDS:
        errors.append(FieldError("body.kind", "org_unit.unknown_kind", "机构类型不在允许范围内"))
    if kind == "department":
        if not department_code:
            errors.append(
                FieldError(
                    "body.department_code",
                    "org_unit.department_required",
                    "部门须指定数据标准中的部门代码",
                )
            )
        elif department_code not in get_catalog().departments:
            errors.append(
                FieldError(
                    "body.department_code",
                    "org_unit.unknown_department",
                    "数据标准中没有该部门代码",
                )
            )
    elif department_code:
        errors.append(
            FieldError(
                "body.department_code",
                "org_unit.department_not_allowed",
                "只有部门可以指定部门代码",
            )
        )
    if not is_region_code(region_code):
        errors.append(FieldError("body.region_code", "region.bad_code", "区划代码应为12位（网格15位）数字"))
    elif not await queries.region_exists(session, region_code):
        errors.append(FieldError("body.region_code", "region.unknown", "区划不存在"))
    if errors:
        raise invalid(errors)

    unit = OrgUnit(code=code, name=name, kind=kind, region_code=region_code, department_code=department_code)
    await _insert(session, unit, {"uq_org_unit_code": Problem(409, "org_unit.exists", "机构代码已存在")})
    return unit


# --- users --------------------------------------------------------------------------------------


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    display_name: str,
    org_unit_code: str,
    roles: list[str] | tuple[str, ...] | frozenset[str],
) -> User:
    errors: list[FieldError] = []
    roles = list(dict.fromkeys(roles))  # keep order, drop repeats
    if not roles:
        errors.append(FieldError("body.roles", "user.roles_required", "至少需要一个角色"))
    for i, role in enumerate(roles):
        if role not in KNOWN_ROLES:
            errors.append(FieldError(f"body.roles.{i}", "user.unknown_role", "未知角色"))
    if len(password) < MIN_PASSWORD_LENGTH:
        errors.append(FieldError("body.password", "user.weak_password", f"密码至少{MIN_PASSWORD_LENGTH}位"))
    unit = await queries.org_unit_by_code(session, org_unit_code)
    if unit is None:
        errors.append(FieldError("body.org_unit_code", "org_unit.unknown", "机构不存在"))
    else:
        for i, role in enumerate(roles):
            if role in KNOWN_ROLES and ROLE_ORG_KIND[role] != unit.kind:
                errors.append(
                    FieldError(f"body.roles.{i}", "user.role_org_kind_mismatch", "该角色与所属机构类型不符")
                )
    if errors:
        raise invalid(errors)

    assert unit is not None
    password_hash = await to_thread.run_sync(hash_password, password)  # argon2: keep the loop free
    user = User(
        username=username,
        display_name=display_name,
        password_hash=password_hash,
        org_unit_id=unit.id,
        roles=roles,
        active=True,
    )
    await _insert(session, user, {"uq_app_user_username": Problem(409, "user.exists", "用户名已被使用")})
    return user


async def set_user_active(
    session: AsyncSession, user_id: int, active: bool, *, by_user_id: int | None
) -> User:
    """Deactivate (ending every token of the user at once) or reactivate a user. Tokens issued
    before a deactivation stay invalid after reactivation: token_version was bumped."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise not_found("用户")
    if not active and user_id == by_user_id:
        raise Problem(409, "user.cannot_deactivate_self", "不能停用自己的账号")
    if user.active != active:
        user.active = active
        if not active:
            user.token_version = (user.token_version or 0) + 1
        await session.flush()
    return user


async def unlock_user(session: AsyncSession, user_id: int) -> User:
    """Lift a lock from repeated failed logins, and the account's login throttle with it."""
    from app.auth.throttle import forget_account

    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise not_found("用户")
    user.locked_at = None
    user.failed_logins = 0
    await forget_account(session, user.username)
    await session.flush()
    return user


# --- service accounts ---------------------------------------------------------------------------


async def create_service_account(
    session: AsyncSession, *, name: str, org_unit_code: str
) -> tuple[ServiceAccount, str]:
    """The account and its full API key. The key is returned here once and stored only hashed."""
    unit = await queries.org_unit_by_code(session, org_unit_code)
    if unit is None:
        raise invalid([FieldError("body.org_unit_code", "org_unit.unknown", "机构不存在")])
    exists = Problem(409, "service_account.exists", "服务账号名称已被使用")
    for _ in range(3):  # a 48-bit prefix collision is unlikely; retry rather than fail
        full_key, prefix, key_hash = new_api_key()
        account = ServiceAccount(
            name=name, org_unit_id=unit.id, key_prefix=prefix, key_hash=key_hash, active=True
        )
        try:
            await _insert(session, account, {"uq_service_account_name": exists})
        except _PrefixTaken:
            continue
        return account, full_key
    raise Problem(500, "internal", "服务内部错误，请稍后重试")


async def deactivate_service_account(session: AsyncSession, account_id: int) -> None:
    if not await queries.deactivate_service_account(session, account_id):
        raise not_found("服务账号")


# --- helpers ------------------------------------------------------------------------------------


class _PrefixTaken(Exception):
    pass


async def _insert(session: AsyncSession, obj: object, unique: dict[str, Problem]) -> None:
    """Flush one new row inside a savepoint; a unique violation becomes the mapped Problem.

    The savepoint keeps the request's transaction usable after the violation. The database error
    (which quotes the duplicate value) is dropped, never shown.
    """
    try:
        async with session.begin_nested():
            session.add(obj)
            await session.flush()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        if constraint in unique:
            raise unique[constraint] from None
        if constraint == "uq_service_account_key_prefix":
            raise _PrefixTaken() from None
        raise
