"""Request/response models of the grants and effective-permissions API."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LevelName = Literal["hidden", "masked", "read", "write"]


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grantee_type: Literal["role", "org_unit", "user", "service_account"] = Field(
        description="被授权对象类型：角色（可限定单位）、单位（含部门）、用户、服务账号"
    )
    role: str | None = Field(None, description="角色，grantee_type=role 时必填")
    org_unit_code: str | None = Field(
        None, description="单位代码：org_unit 必填；role 时可选，表示该单位内的角色"
    )
    username: str | None = Field(None, description="用户名，grantee_type=user 时必填")
    service_account: str | None = Field(None, description="服务账号名，grantee_type=service_account 时必填")
    ledger: str = Field(description="台账代码，或 * 表示全部台账")
    field: str = Field("*", description="字段代码，或 * 表示全部字段")
    level: LevelName = Field(description="hidden 隐藏 / masked 脱敏 / read 可读 / write 可写（含可读）")
    allow_lookup: bool = Field(False, description="脱敏字段是否允许按原值精确查找")
    row_scope: Literal["own", "regions", "all"] = Field(
        "own", description="行范围：本单位辖区 / 指定区划 / 全部"
    )
    regions: list[str] = Field(default_factory=list, description="row_scope=regions 时的区划代码")
    note: str | None = Field(None, max_length=200, description="授权依据或说明")


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    grantee_type: str
    role: str | None
    org_unit_id: int | None
    user_id: int | None
    service_account_id: int | None
    ledger: str
    field: str
    level: str
    allow_lookup: bool
    row_scope: str
    regions: list[str]
    note: str | None
    created_by: str
    created_at: datetime


class FieldPermission(BaseModel):
    field: str
    label: str
    sensitivity: str
    level: LevelName
    mask: str | None = Field(description="脱敏规则（level=masked 时）")
    allow_lookup: bool
    reason: str = Field(description="由哪条授权或默认规则决定")


class EffectivePermissions(BaseModel):
    principal: str
    ledger: str
    row_scope: list[str] = Field(description="可见记录的区划代码前缀；空表示无任何记录")
    row_scope_reason: str
    fields: list[FieldPermission]
