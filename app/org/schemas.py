"""Request and response bodies of the org API. Responses never carry password or API-key hashes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OrgKind = Literal["platform", "department", "township", "village"]

_REGION_CODE = r"^[0-9]{12}([0-9]{3})?$"
_CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$"
_USERNAME = r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- regions ------------------------------------------------------------------------------------


class RegionOut(_Out):
    code: str = Field(description="统计用区划代码（12位；网格15位）")
    name: str = Field(description="区划名称")
    level: int = Field(description="层级：1省 2市 3区县 4镇街 5村社区 6网格")
    parent_code: str | None = Field(description="上级区划代码；顶层为空")


class RegionUpsert(_In):
    name: str = Field(min_length=1, max_length=100, description="区划名称")
    parent_code: str | None = Field(
        default=None,
        pattern=_REGION_CODE,
        description="上级区划代码；省略时按代码推算（如 500118101001 → 500118101000）",
    )


# --- org units ----------------------------------------------------------------------------------


class OrgUnitRef(_Out):
    id: int = Field(description="机构编号")
    code: str = Field(description="机构代码")
    name: str = Field(description="机构名称")
    kind: str = Field(
        description="机构类型：platform 平台 / department 部门 / township 镇街 / village 村社区"
    )
    region_code: str = Field(description="管辖区划代码：其下级区划均在管辖范围内")


class OrgUnitOut(OrgUnitRef):
    department_code: str | None = Field(description="数据标准中的部门代码（仅部门）")


class OrgUnitCreate(_In):
    code: str = Field(pattern=_CODE, description="机构代码，唯一，如 town-500118101")
    name: str = Field(min_length=1, max_length=100, description="机构名称")
    kind: OrgKind = Field(description="机构类型")
    region_code: str = Field(pattern=_REGION_CODE, description="管辖区划代码，须已存在于区划树")
    department_code: str | None = Field(
        default=None, max_length=41, description="数据标准中的部门代码：部门必填，其他机构不填"
    )


# --- users --------------------------------------------------------------------------------------


class UserOut(_Out):
    id: int = Field(description="用户编号")
    username: str = Field(description="登录名")
    display_name: str = Field(description="姓名或显示名")
    org_unit: OrgUnitRef = Field(description="所属机构")
    roles: list[str] = Field(description="角色")
    active: bool = Field(description="是否启用")
    locked: bool = Field(description="是否因多次登录失败被锁定（须管理员解锁）")
    created_at: datetime = Field(description="创建时间")


class UserCreate(_In):
    username: str = Field(pattern=_USERNAME, description="登录名：3–64位字母、数字或 . _ @ -")
    password: str = Field(min_length=8, max_length=128, description="初始密码，至少8位")
    display_name: str = Field(min_length=1, max_length=100, description="姓名或显示名")
    org_unit_code: str = Field(max_length=40, description="所属机构代码")
    roles: list[str] = Field(
        min_length=1,
        max_length=6,
        description=(
            "角色：platform_admin 平台管理员（平台）、"
            "dept_admin / dept_staff 部门管理员/人员（部门）、"
            "township_admin / township_staff 镇街管理员/人员（镇街）、"
            "village_staff 村社区/网格人员（村社区）；角色须与所属机构类型一致"
        ),
    )


# --- service accounts ---------------------------------------------------------------------------


class ServiceAccountOut(_Out):
    id: int = Field(description="服务账号编号")
    name: str = Field(description="服务账号名称（对接系统）")
    org_unit: OrgUnitRef = Field(description="所属机构")
    key_prefix: str = Field(description="密钥前缀，用于识别密钥；不是密钥本身")
    active: bool = Field(description="是否启用")
    created_at: datetime = Field(description="创建时间")


class ServiceAccountCreated(ServiceAccountOut):
    api_key: str = Field(
        description=("API 密钥（X-API-Key 请求头）。只在创建时返回这一次，平台只保存其哈希，请立即妥善保存")
    )


class ServiceAccountCreate(_In):
    name: str = Field(min_length=1, max_length=100, description="服务账号名称（对接系统），唯一")
    org_unit_code: str = Field(max_length=40, description="所属机构代码")
