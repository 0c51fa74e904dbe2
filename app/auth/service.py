"""Login: check a username and password without revealing which of the two was wrong."""

from __future__ import annotations

from anyio import to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import DUMMY_HASH, verify_password
from app.errors import Problem
from app.org import queries
from app.org.models import User


def bad_credentials() -> Problem:
    return Problem(401, "auth.bad_credentials", "用户名或密码错误")


async def authenticate_user(session: AsyncSession, username: str, password: str) -> User:
    user = await queries.user_by_username(session, username)
    # Always run one argon2 verification (off the event loop) so timing does not tell
    # "no such user" from "wrong password".
    hashed = user.password_hash if user is not None else DUMMY_HASH
    ok = await to_thread.run_sync(verify_password, password, hashed)
    if user is None or not ok:
        raise bad_credentials()
    if not user.active:
        # Only someone who knows the password learns the account is disabled.
        raise Problem(401, "auth.account_disabled", "账号已停用")
    return user
