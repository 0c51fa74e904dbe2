"""Statements over the org tables. No business rules: the service decides, these fetch and store."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.org.models import OrgUnit, Region, ServiceAccount, User

# --- identities (used by auth) ------------------------------------------------------------------


async def user_by_username(session: AsyncSession, username: str) -> User | None:
    return await session.scalar(select(User).where(User.username == username))


async def user_with_org_unit(session: AsyncSession, user_id: int) -> tuple[User, OrgUnit] | None:
    stmt = select(User, OrgUnit).join(OrgUnit, User.org_unit_id == OrgUnit.id).where(User.id == user_id)
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


async def user_for_token(session: AsyncSession, user_id: int, jti: str) -> tuple[User, OrgUnit, bool] | None:
    """The user, its org unit and whether this token was logged out: one statement per request."""
    from app.auth.models import RevokedToken

    revoked = exists().where(RevokedToken.jti == jti).label("revoked")
    stmt = (
        select(User, OrgUnit, revoked).join(OrgUnit, User.org_unit_id == OrgUnit.id).where(User.id == user_id)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1], bool(row[2])) if row else None


async def service_account_with_org_unit(
    session: AsyncSession, key_prefix: str
) -> tuple[ServiceAccount, OrgUnit] | None:
    stmt = (
        select(ServiceAccount, OrgUnit)
        .join(OrgUnit, ServiceAccount.org_unit_id == OrgUnit.id)
        .where(ServiceAccount.key_prefix == key_prefix)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


# --- regions ------------------------------------------------------------------------------------


async def region(session: AsyncSession, code: str) -> Region | None:
    return await session.get(Region, code)


async def region_exists(session: AsyncSession, code: str) -> bool:
    return bool(await session.scalar(select(exists().where(Region.code == code))))


async def region_children(session: AsyncSession, parent_code: str | None) -> Sequence[Region]:
    """Children of a region; with no parent, the roots of the stored tree.

    A root is a region without parent_code or whose parent is not stored (a district loaded without
    its city and province is still reachable).
    """
    if parent_code is not None:
        stmt = select(Region).where(Region.parent_code == parent_code)
    else:
        parent = aliased(Region)
        stmt = select(Region).where(
            (Region.parent_code.is_(None)) | ~exists().where(parent.code == Region.parent_code)
        )
    return (await session.scalars(stmt.order_by(Region.code))).all()


async def upsert_region(
    session: AsyncSession, *, code: str, name: str, level: int, parent_code: str | None
) -> Region:
    stmt = (
        insert(Region)
        .values(code=code, name=name, level=level, parent_code=parent_code)
        .on_conflict_do_update(
            index_elements=[Region.code],
            set_={"name": name, "level": level, "parent_code": parent_code},
        )
        .returning(Region)
    )
    # populate_existing: a Region already in this session's identity map gets the new values.
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one()


# --- org units ----------------------------------------------------------------------------------


async def org_unit_by_code(session: AsyncSession, code: str) -> OrgUnit | None:
    return await session.scalar(select(OrgUnit).where(OrgUnit.code == code))


async def list_org_units(
    session: AsyncSession, *, kind: str | None, region_prefix: str | None, limit: int, offset: int
) -> Sequence[OrgUnit]:
    stmt = select(OrgUnit)
    if kind is not None:
        stmt = stmt.where(OrgUnit.kind == kind)
    if region_prefix is not None:
        stmt = stmt.where(OrgUnit.region_code.startswith(region_prefix, autoescape=True))
    stmt = stmt.order_by(OrgUnit.region_code, OrgUnit.code).limit(limit).offset(offset)
    return (await session.scalars(stmt)).all()


# --- users and service accounts -----------------------------------------------------------------


def _users_with_units() -> Select[tuple[User, OrgUnit]]:
    return select(User, OrgUnit).join(OrgUnit, User.org_unit_id == OrgUnit.id)


async def list_users(
    session: AsyncSession,
    *,
    org_unit_code: str | None,
    active: bool | None,
    limit: int,
    offset: int,
) -> list[tuple[User, OrgUnit]]:
    stmt = _users_with_units()
    if org_unit_code is not None:
        stmt = stmt.where(OrgUnit.code == org_unit_code)
    if active is not None:
        stmt = stmt.where(User.active == active)
    stmt = stmt.order_by(User.id).limit(limit).offset(offset)
    return [(u, o) for u, o in (await session.execute(stmt)).all()]


async def list_service_accounts(
    session: AsyncSession, *, active: bool | None, limit: int, offset: int
) -> list[tuple[ServiceAccount, OrgUnit]]:
    stmt = select(ServiceAccount, OrgUnit).join(OrgUnit, ServiceAccount.org_unit_id == OrgUnit.id)
    if active is not None:
        stmt = stmt.where(ServiceAccount.active == active)
    stmt = stmt.order_by(ServiceAccount.id).limit(limit).offset(offset)
    return [(s, o) for s, o in (await session.execute(stmt)).all()]


async def deactivate_service_account(session: AsyncSession, account_id: int) -> bool:
    """True if the account exists (deactivating an inactive account is a no-op, not an error)."""
    stmt = (
        update(ServiceAccount)
        .where(ServiceAccount.id == account_id)
        .values(active=False)
        .returning(ServiceAccount.id)
        .execution_options(synchronize_session="fetch")
    )
    return (await session.scalar(stmt)) is not None
