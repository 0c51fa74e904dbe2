"""Login throttling in PostgreSQL: failures per submitted username and per client address within a
fixed window (settings.login_*). Every worker reads and counts the same rows; the upsert is atomic.

The clock is the database's (now()), so workers on several hosts agree on when a window ends.
"""

from __future__ import annotations

import math

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import LoginThrottle
from app.config import Settings
from app.errors import Problem


def account_key(username: str) -> str:
    return f"user:{username}"


def address_key(address: str) -> str:
    return f"addr:{address}"


def too_many_attempts(seconds: int) -> Problem:
    return Problem(
        429,
        "auth.too_many_attempts",
        f"登录失败次数过多，请 {seconds} 秒后再试",
        headers={"Retry-After": str(seconds)},
    )


def _window(settings: Settings):
    return func.make_interval(0, 0, 0, 0, 0, 0, float(settings.login_window_seconds))


async def check(session: AsyncSession, settings: Settings, *, username: str, address: str) -> None:
    """Problem 429 with Retry-After while the account or the address has used up its attempts."""
    t = LoginThrottle.__table__.c
    ends = t.window_start + _window(settings)
    stmt = select(func.max(func.extract("epoch", ends - func.now()))).where(
        or_(
            (t.key == account_key(username)) & (t.failures >= settings.login_account_attempts),
            (t.key == address_key(address)) & (t.failures >= settings.login_address_attempts),
        ),
        ends > func.now(),
    )
    wait = await session.scalar(stmt)
    if wait is not None:
        raise too_many_attempts(max(1, math.ceil(wait)))


_COUNT_FAILURE = text(
    "INSERT INTO login_throttle (key, failures, window_start) VALUES (:key, 1, now()) "
    "ON CONFLICT (key) DO UPDATE SET "
    # A window that has ended starts again at one failure.
    "failures = CASE WHEN login_throttle.window_start + make_interval(secs => :w) <= now() "
    "THEN 1 ELSE login_throttle.failures + 1 END, "
    "window_start = CASE WHEN login_throttle.window_start + make_interval(secs => :w) <= now() "
    "THEN now() ELSE login_throttle.window_start END"
)


async def record_failure(session: AsyncSession, settings: Settings, *, username: str, address: str) -> None:
    w = settings.login_window_seconds
    for key in (account_key(username), address_key(address)):
        await session.execute(_COUNT_FAILURE, {"key": key, "w": w})
    # Windows that ended are of no use: keep the table as small as the current attacks.
    t = LoginThrottle.__table__.c
    await session.execute(delete(LoginThrottle).where(t.window_start + _window(settings) <= func.now()))


async def forget_account(session: AsyncSession, username: str) -> None:
    """A successful login (or an unlock) clears the account's count; the address keeps its own."""
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key(username)))
