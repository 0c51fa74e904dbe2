"""Test helpers: org units, users, service accounts and their auth headers, straight into the DB.

These bypass the service's validation on purpose (no region rows needed) and only flush: the test's
transaction is rolled back at the end.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_password, new_api_key
from app.auth.tokens import issue_token
from app.config import Settings
from app.org.models import OrgUnit, ServiceAccount, User

PASSWORD = "correct-horse-battery-staple"
PASSWORD_HASH = hash_password(PASSWORD)  # argon2 is slow: hash once, reuse for every user


async def make_org_unit(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    kind: str,
    region_code: str,
    department_code: str | None = None,
) -> OrgUnit:
    unit = OrgUnit(code=code, name=name, kind=kind, region_code=region_code, department_code=department_code)
    session.add(unit)
    await session.flush()
    return unit


async def make_user(
    session: AsyncSession,
    *,
    username: str,
    org_unit: OrgUnit,
    roles: list[str] | tuple[str, ...],
    active: bool = True,
    display_name: str | None = None,
) -> User:
    """A user whose password is PASSWORD."""
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=PASSWORD_HASH,
        org_unit_id=org_unit.id,
        roles=list(roles),
        active=active,
    )
    session.add(user)
    await session.flush()
    return user


def auth_headers(settings: Settings, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, user)}"}


async def make_service_account(
    session: AsyncSession, org_unit: OrgUnit, *, name: str | None = None, active: bool = True
) -> tuple[ServiceAccount, str]:
    """The account and its full API key."""
    key, prefix, key_hash = new_api_key()
    account = ServiceAccount(
        name=name or f"svc-{prefix}",
        org_unit_id=org_unit.id,
        key_prefix=prefix,
        key_hash=key_hash,
        active=active,
    )
    session.add(account)
    await session.flush()
    return account, key


def api_key_headers(key: str) -> dict[str, str]:
    return {"X-API-Key": key}
