"""GraphQL errors with a stable extensions.code; Problems from the access policy and listing rules
become such errors without echoing any value the caller sent or may not read."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from app.errors import Problem

# Problem code (REST) -> GraphQL extensions.code
_CODES = {
    "access.field_hidden": "FORBIDDEN_FIELD",
    "access.field_masked": "MASKED_FIELD",
    "query.invalid": "BAD_USER_INPUT",
    "query.cursor_invalid": "BAD_USER_INPUT",
    "auth.required": "UNAUTHENTICATED",
    "auth.invalid_token": "UNAUTHENTICATED",
    "auth.invalid_api_key": "UNAUTHENTICATED",
    "auth.account_disabled": "UNAUTHENTICATED",
}


class GqlError(GraphQLError):
    """A field error meant for the caller: Chinese message, stable code, optional argument path."""

    def __init__(self, code: str, message: str, *, where: str | None = None, **extra: Any):
        ext: dict[str, Any] = {"code": code}
        if where:
            ext["argument"] = where
        ext.update(extra)
        super().__init__(message, extensions=ext)


def from_problem(p: Problem) -> GqlError:
    first = p.errors[0] if p.errors else None
    message = f"{p.title}：{first.message}" if first and first.message != p.title else p.title
    return GqlError(
        _CODES.get(p.code, "BAD_REQUEST"), message, where=first.path if first else None, problem=p.code
    )


def unauthenticated() -> GqlError:
    return GqlError("UNAUTHENTICATED", "需要登录：请提供 Authorization: Bearer 令牌或 X-API-Key")


def internal() -> GqlError:
    return GqlError("INTERNAL", "服务内部错误，请稍后重试")
