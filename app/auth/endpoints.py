"""POST /auth/token (OAuth2 password form or JSON), POST /auth/logout, POST /auth/password, GET /auth/me."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.auth import service
from app.auth.deps import AppSettings, CurrentPrincipal, oauth2_scheme
from app.auth.schemas import LoginRequest, MeResponse, PasswordChange, TokenResponse
from app.auth.tokens import decode_claims, issue_token, token_ttl_seconds
from app.db.deps import Session
from app.errors import FieldError, Problem, invalid
from app.org.models import OrgUnit
from app.org.schemas import OrgUnitRef
from app.problem_responses import PROBLEM_CONTENT

router = APIRouter(prefix="/auth", tags=["认证"])

_LOGIN_SCHEMA = LoginRequest.model_json_schema()
_FORM_SCHEMA = {
    **_LOGIN_SCHEMA,
    "properties": {
        **_LOGIN_SCHEMA["properties"],
        "grant_type": {
            "type": "string",
            "enum": ["password"],
            "description": "OAuth2 授权类型，可省略",
        },
        "scope": {"type": "string", "description": "忽略"},
        "client_id": {"type": "string", "description": "忽略"},
        "client_secret": {"type": "string", "description": "忽略"},
    },
}


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="登录，获取访问令牌",
    description=(
        "接受 OAuth2 密码表单（application/x-www-form-urlencoded）"
        "或 JSON {username, password}。用户名或密码错误时统一返回 401 auth.bad_credentials。"
        "同一账号或同一客户端地址短时间内失败过多时返回 429（Retry-After 头给出等待秒数）；"
        "账号连续失败达到上限后锁定，须由管理员解锁。"
    ),
    responses={
        401: {"description": "用户名或密码错误，或账号已停用、已锁定", **PROBLEM_CONTENT},
        429: {"description": "登录失败次数过多：按 Retry-After 头的秒数后再试", **PROBLEM_CONTENT},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
                "application/json": {"schema": _LOGIN_SCHEMA},
            },
        }
    },
)
async def login(
    request: Request, response: Response, session: Session, settings: AppSettings
) -> TokenResponse:
    creds = await _read_credentials(request)
    try:
        user = await service.authenticate_user(
            session, settings, creds.username, creds.password, address=client_address(request)
        )
    except Problem:
        await session.commit()  # the failure counts must outlive the refusal
        raise
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return TokenResponse(access_token=issue_token(settings, user), expires_in=token_ttl_seconds(settings))


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="注销：作废当前令牌",
    description="作废请求中的 Bearer 令牌（其他设备上的登录不受影响）。服务账号的 API 密钥由管理员停用。",
    responses={
        400: {"description": "不是用户令牌", **PROBLEM_CONTENT},
        401: {"description": "未登录或凭证无效", **PROBLEM_CONTENT},
    },
)
async def logout(
    principal: CurrentPrincipal,
    session: Session,
    settings: AppSettings,
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
) -> Response:
    if principal.kind != "user" or not bearer:
        raise Problem(400, "auth.not_a_user_token", "只有用户登录令牌可以注销")
    await service.logout(session, decode_claims(settings, bearer))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="修改本人密码",
    description="须提供当前密码。修改后本人所有已签发的令牌（含本次请求所用令牌）立即失效，请重新登录。",
    responses={
        400: {"description": "不是用户令牌", **PROBLEM_CONTENT},
        401: {"description": "未登录或凭证无效", **PROBLEM_CONTENT},
        422: {"description": "当前密码不正确或新密码不符合要求", **PROBLEM_CONTENT},
        429: {"description": "失败次数过多：按 Retry-After 头的秒数后再试", **PROBLEM_CONTENT},
    },
)
async def change_password(
    body: PasswordChange,
    request: Request,
    principal: CurrentPrincipal,
    session: Session,
    settings: AppSettings,
) -> Response:
    if principal.kind != "user":
        raise Problem(400, "auth.not_a_user_token", "服务账号没有密码，请由管理员更换密钥")
    try:
        await service.change_password(
            session,
            settings,
            principal.id,
            body.current_password,
            body.new_password,
            address=client_address(request),
        )
    except Problem:
        await session.commit()  # a wrong current password counts like a failed login
        raise
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me",
    response_model=MeResponse,
    summary="当前调用者",
    description="返回当前用户或服务账号、所属机构和角色。",
    responses={401: {"description": "未登录或凭证无效", **PROBLEM_CONTENT}},
)
async def me(principal: CurrentPrincipal, session: Session) -> MeResponse:
    # Already in the session's identity map: current_principal loaded it in its joined query.
    unit = await session.get(OrgUnit, principal.org_unit_id)
    return MeResponse(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        org_unit=OrgUnitRef.model_validate(unit),
        roles=sorted(principal.roles),
        department_code=principal.department_code,
    )


def client_address(request: Request) -> str:
    """The peer address; behind a reverse proxy, uvicorn's --proxy-headers/--forwarded-allow-ips
    make it the client's (from X-Forwarded-For of trusted proxies only)."""
    return request.client.host if request.client else "unknown"


async def _read_credentials(request: Request) -> LoginRequest:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    data: Any
    if media_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise Problem(400, "request.bad", "请求格式错误") from None
    elif media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        grant_type = form.get("grant_type")
        if grant_type not in (None, "", "password"):
            raise invalid(
                [FieldError("body.grant_type", "auth.unsupported_grant_type", "只支持 password 授权类型")]
            )
        data = {k: form.get(k) for k in ("username", "password") if form.get(k) is not None}
        data = {k: v for k, v in data.items() if isinstance(v, str)}
    else:
        raise Problem(415, "request.unsupported_media_type", "不支持的内容类型")
    try:
        return LoginRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None
