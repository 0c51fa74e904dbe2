"""The current principal: a user with a Bearer token or a service account with an X-API-Key.

Roles and org unit are loaded from the database (one joined query), so deactivation and role changes
apply immediately. The hot reads take them from the per-process caller cache instead, which every such
change invalidates through the access version checked in the read's own statement
(app/access/cache.py, docs/performance.md). The principal is cached on request.state.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_api_key
from app.auth.principal import Credentials, Principal
from app.auth.tokens import TokenClaims, decode_claims, invalid_token
from app.config import Settings
from app.db.deps import Session
from app.errors import Problem
from app.org import queries
from app.org.models import OrgUnit
from app.org.regions import region_prefix

TOKEN_URL = "/api/v1/auth/token"

# auto_error=False: we answer missing credentials ourselves, as problem+json. These objects also
# declare the two security schemes in OpenAPI, so /docs "Authorize" works.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=TOKEN_URL,
    auto_error=False,
    scheme_name="UserToken",
    description="用户名密码登录，获得 Bearer 令牌",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ServiceApiKey",
    description="服务账号的 API 密钥：ot_<前缀>_<密钥>",
)

# Compared against when the key prefix is unknown, so a miss costs the same as a wrong secret.
_DUMMY_KEY_HASH = hash_api_key("onetable-dummy-api-key")


def app_settings(request: Request) -> Settings:
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(app_settings)]


def auth_required() -> Problem:
    return Problem(401, "auth.required", "需要登录", headers={"WWW-Authenticate": "Bearer"})


def invalid_api_key() -> Problem:
    return Problem(401, "auth.invalid_api_key", "API 密钥无效", headers={"WWW-Authenticate": "Bearer"})


def account_disabled() -> Problem:
    return Problem(401, "auth.account_disabled", "账号已停用", headers={"WWW-Authenticate": "Bearer"})


async def authenticate(
    session: AsyncSession, settings: Settings, *, bearer: str | None, api_key: str | None
) -> Principal:
    """Resolve credentials to a principal (also usable outside FastAPI DI, e.g. GraphQL context)."""
    if bearer:
        return await _user_principal(session, decode_claims(settings, bearer))
    if api_key:
        return await _service_principal(session, api_key)
    raise auth_required()


async def current_principal(
    request: Request,
    session: Session,
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal = await authenticate(session, app_settings(request), bearer=bearer, api_key=api_key)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: str):
    """Dependency factory: the current principal, if it holds at least one of `roles`; else 403."""
    wanted = frozenset(roles)

    async def _require(principal: CurrentPrincipal) -> Principal:
        if not (principal.roles & wanted):
            raise Problem(403, "auth.role_required", "当前账号没有执行此操作所需的角色")
        return principal

    return _require


PlatformAdmin = Annotated[Principal, Depends(require_role("platform_admin"))]


async def _user_principal(session: AsyncSession, claims: TokenClaims) -> Principal:
    found = await queries.user_for_token(session, claims.user_id, claims.jti)
    if found is None:
        raise invalid_token()
    user, unit, revoked = found
    if revoked:  # logged out
        raise invalid_token()
    if not user.active:
        raise account_disabled()
    if claims.version != user.token_version:  # issued before a password change or deactivation
        raise invalid_token()
    return principal_of("user", user.id, user.username, unit, frozenset(user.roles or ()))


async def _service_principal(session: AsyncSession, api_key: str) -> Principal:
    parts = api_key.split("_", 2)
    if len(parts) != 3 or parts[0] != "ot" or not parts[1] or not parts[2]:
        raise invalid_api_key()
    _, prefix, secret = parts
    found = await queries.service_account_with_org_unit(session, prefix)
    stored = found[0].key_hash if found else _DUMMY_KEY_HASH
    matches = hmac.compare_digest(hash_api_key(secret), stored)
    if found is None or not matches:
        raise invalid_api_key()
    account, unit = found
    if not account.active:
        raise account_disabled()
    return principal_of("service_account", account.id, account.name, unit, frozenset({"service"}))


def principal_of(kind: str, id_: int, name: str, unit: OrgUnit, roles: frozenset[str]) -> Principal:
    """The principal acting as a user or service account of `unit` (also: admins inspecting others)."""
    return Principal(
        kind=kind,
        id=id_,
        name=name,
        org_unit_id=unit.id,
        org_unit_kind=unit.kind,
        region_code=unit.region_code,
        region_prefix=region_prefix(unit.region_code),
        department_code=unit.department_code,
        roles=roles,
    )


async def credentials(
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Credentials:
    """The credentials alone, checked later (the cached read paths, app/ledger/fastread.py)."""
    return Credentials(bearer, api_key)


CallerCredentials = Annotated[Credentials, Depends(credentials)]
