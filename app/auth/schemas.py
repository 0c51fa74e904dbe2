"""Bodies of the auth API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.org.schemas import OrgUnitRef


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, description="登录名")
    password: str = Field(min_length=1, max_length=128, description="密码")


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=128, description="当前密码")
    new_password: str = Field(min_length=8, max_length=128, description="新密码，至少8位")


class TokenResponse(BaseModel):
    access_token: str = Field(description="访问令牌：请求时放在 Authorization: Bearer <令牌> 头中")
    token_type: Literal["bearer"] = Field(default="bearer", description="令牌类型，固定为 bearer")
    expires_in: int = Field(description="有效期（秒）")


class MeResponse(BaseModel):
    kind: Literal["user", "service_account"] = Field(
        description="调用者类型：user 用户 / service_account 服务账号"
    )
    id: int = Field(description="用户或服务账号编号")
    name: str = Field(description="登录名或服务账号名称")
    org_unit: OrgUnitRef = Field(description="所属机构")
    roles: list[str] = Field(description="角色；服务账号为 service")
    department_code: str | None = Field(description="所属部门在数据标准中的代码（仅部门机构）")
