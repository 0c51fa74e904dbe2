"""Request and response shapes of /api/v1/legacy-forms (the legacy report register, Layer A)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Frequency = Literal["daily", "weekly", "monthly", "quarterly", "half_yearly", "yearly", "irregular"]


class FormIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="报表名称")
    department: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9_]{0,40}$", description="制发部门代码；部门用户缺省为本部门"
    )
    frequency: Frequency = Field(description="报送频次")
    level: Literal["city", "district", "township"] = Field("district", description="制发层级")
    headers: list[str] = Field(min_length=1, max_length=200, description="表头（列名），按原表顺序")


class FormOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    department_code: str
    frequency: str
    level: str
    headers: list[str]
    state: str
    target_ledger: str | None
    template_id: int | None
    retired_at: datetime | None
    created_by: str
    created_at: datetime


class FormList(BaseModel):
    items: list[FormOut]
    pull_only: bool | None = Field(None, description="上线时：替代模板是否为只取数模板")


class ProposalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    form_ids: list[int] | None = Field(
        None, max_length=1000, description="参与合并的报表；缺省为全部在用报表"
    )


class ProposalList(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="每个主题（台账或专题台账）一份合并方案：数据项、来源、镇街维护量、上线后的只取数模板草案"
    )


class GoLiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    form_ids: list[int] = Field(min_length=1, max_length=1000)
    template_id: int = Field(ge=1, description="替代这些报表的模板（须为只取数模板）")
    ledger: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$", description="报表并入的台账或专题台账")


class Breakdown(BaseModel):
    ledger: str
    items: int
    platform: int
    department: int
    township: int
    legacy_reports_merged: int
    upkeep_share: float | None = Field(description="镇街维护数据项占比（按数据项）")
    fed_by_push: int = Field(description="已有部门推送到达的数据项数")
