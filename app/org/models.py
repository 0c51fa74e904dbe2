"""Org tree and identities: regions, org units (departments, townships …), users, service accounts."""

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class Region(Base):
    """A node of the division tree keyed by its statistical code; a code prefix is a subtree."""

    __tablename__ = "region"

    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # 1 province, 2 city, 3 county/district, 4 township/street, 5 village/community, 6 grid
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(String(15), index=True)

    __table_args__ = (
        Index("ix_region_code_pattern", "code", postgresql_ops={"code": "varchar_pattern_ops"}),
    )


class OrgUnit(Base):
    """Who acts: the platform office, a department, a township office, a village committee.

    region_code is the root of its jurisdiction: everything whose region_code starts with it.
    """

    __tablename__ = "org_unit"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # platform | department | township | village
    region_code: Mapped[str] = mapped_column(String(15))
    department_code: Mapped[str | None] = mapped_column(String(41))  # catalogue department, for departments


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    # platform_admin | dept_admin | dept_staff | township_admin | township_staff | village_staff
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Carried in every token ("ver") and bumped on password change and deactivation: tokens with an
    # older value are refused, so both revoke every session of the user at once.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Failed logins since the last success; at settings.login_lock_after the account is locked
    # (locked_at set) until an administrator unlocks it.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceAccount(Base):
    """Another system pulling shared data. Its API key is shown once and stored only as a hash."""

    __tablename__ = "service_account"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    key_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
