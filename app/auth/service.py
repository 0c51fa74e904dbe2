"""Login, logout and password change: without revealing which of username and password was wrong.

Every refusal after a password check has counted the failure (throttle rows, the user's lock
counter); the caller commits before answering, so the counts survive the error response.
"""

from __future__ import annotations

from anyio import to_thread
from sqlalchemy import case, delete, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import throttle
from app.auth.models import RevokedToken
from app.auth.passwords import DUMMY_HASH, hash_password, verify_password
from app.auth.tokens import TokenClaims
from app.config import Settings
from app.errors import FieldError, Problem, invalid
from app.org import queries
from app.org.models import User
from app.org.service import MIN_PASSWORD_LENGTH


def bad_credentials() -> Problem:
    return Problem(401, "auth.bad_credentials", "用户名或密码错误")


def account_locked() -> Problem:
    return Problem(
        401,
        "auth.account_locked",
        "账号因多次登录失败已锁定，请联系管理员解锁",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def authenticate_user(
    session: AsyncSession, settings: Settings, username: str, password: str, *, address: str
) -> User:
    await throttle.check(session, settings, username=username, address=address)
    user = await queries.user_by_username(session, username)
    # Always run one argon2 verification (off the event loop) so timing does not tell
    # "no such user" from "wrong password".
    hashed = user.password_hash if user is not None else DUMMY_HASH
    ok = await to_thread.run_sync(verify_password, password, hashed)
    if user is None or not ok:
        await throttle.record_failure(session, settings, username=username, address=address)
        if user is not None:
            await _count_failure(session, settings, user)
        raise bad_credentials()
    # Only someone who knows the password learns that the account is locked or disabled.
    if user.locked_at is not None:
        raise account_locked()
    if not user.active:
        raise Problem(401, "auth.account_disabled", "账号已停用")
    if user.failed_logins:
        user.failed_logins = 0
    await throttle.forget_account(session, username)
    return user


async def _count_failure(session: AsyncSession, settings: Settings, user: User) -> None:
    """One more consecutive failure, in one statement (two workers may count at once)."""
    count = User.failed_logins + 1
    await session.execute(
        update(User)
        .where(User.id == user.id)
        .values(
            failed_logins=count,
            locked_at=func.coalesce(User.locked_at, case((count >= settings.login_lock_after, func.now()))),
        )
        .execution_options(synchronize_session=False)
    )


async def logout(session: AsyncSession, claims: TokenClaims) -> None:
    """Put the token on the revoked list until it would have expired anyway."""
    await session.execute(
        insert(RevokedToken)
        .values(jti=claims.jti, user_id=claims.user_id, expires_at=claims.expires_at)
        .on_conflict_do_nothing(index_elements=[RevokedToken.jti])
    )
    await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < func.now()))


async def change_password(
    session: AsyncSession,
    settings: Settings,
    user_id: int,
    current_password: str,
    new_password: str,
    *,
    address: str,
) -> None:
    """Check the current password (throttled and counted like a login), store the new one and bump
    token_version, which ends every token of the user, the presented one included."""
    user = await session.get(User, user_id)
    if user is None:
        raise bad_credentials()
    await throttle.check(session, settings, username=user.username, address=address)
    if not await to_thread.run_sync(verify_password, current_password, user.password_hash):
        await throttle.record_failure(session, settings, username=user.username, address=address)
        await _count_failure(session, settings, user)
        raise invalid([FieldError("body.current_password", "auth.wrong_password", "当前密码不正确")])
    errors = []
    if len(new_password) < MIN_PASSWORD_LENGTH:
        errors.append(
            FieldError("body.new_password", "user.weak_password", f"密码至少{MIN_PASSWORD_LENGTH}位")
        )
    elif new_password == current_password:
        errors.append(FieldError("body.new_password", "user.same_password", "新密码不能与当前密码相同"))
    if errors:
        raise invalid(errors)
    user.password_hash = await to_thread.run_sync(hash_password, new_password)
    user.token_version = User.token_version + 1
    user.failed_logins = 0
    await session.flush()
