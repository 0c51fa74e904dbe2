"""Access tokens for users: short-lived HS256 JWTs whose subject is "user:<id>".

A token carries no roles or org unit: those are loaded from the database on every request, so a
deactivated user or a changed role takes effect at once. It carries the user's token_version ("ver"),
which password change and deactivation bump, and a jti that logout puts on the revoked list.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from app.config import Settings
from app.errors import Problem
from app.org.models import User

ALGORITHM = "HS256"
_SUBJECT_PREFIX = "user:"


def invalid_token() -> Problem:
    return Problem(
        401,
        "auth.invalid_token",
        "登录凭证无效或已过期，请重新登录",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def token_ttl_seconds(settings: Settings) -> int:
    return settings.token_ttl_minutes * 60


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    jti: str
    version: int
    expires_at: datetime


def issue_token(settings: Settings, user: User) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": f"{_SUBJECT_PREFIX}{user.id}",
        "iat": now,
        "exp": now + timedelta(seconds=token_ttl_seconds(settings)),
        "jti": secrets.token_urlsafe(16),
        "ver": getattr(user, "token_version", None) or 0,
    }
    return jwt.encode(claims, _secret(settings), algorithm=ALGORITHM)


def _secret(settings: Settings) -> str:
    if settings.secret_key is None:  # the service refuses to start without one (config.py)
        raise RuntimeError("ONETABLE_SECRET_KEY is not set")
    return settings.secret_key.get_secret_value()


def decode_token(settings: Settings, token: str) -> int:
    """The user id in a valid, unexpired token; Problem 401 auth.invalid_token otherwise."""
    return decode_claims(settings, token).user_id


def decode_claims(settings: Settings, token: str) -> TokenClaims:
    """What a valid, unexpired token says; Problem 401 auth.invalid_token otherwise. Whether it was
    revoked since is the database's to say (app/auth/deps.py)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _secret(settings),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat", "jti"]},
        )
    except jwt.PyJWTError:
        raise invalid_token() from None
    sub, jti, version = claims.get("sub"), claims.get("jti"), claims.get("ver", 0)
    if not isinstance(sub, str) or not sub.startswith(_SUBJECT_PREFIX):
        raise invalid_token()
    digits = sub[len(_SUBJECT_PREFIX) :]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise invalid_token()
    if not isinstance(jti, str) or not 0 < len(jti) <= 64:
        raise invalid_token()
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < 2**31:
        raise invalid_token()
    return TokenClaims(int(digits), jti, version, datetime.fromtimestamp(claims["exp"], UTC))
