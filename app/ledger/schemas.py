"""Response models of the records API. Records are open objects: their fields come from the catalogue."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RecordOut(BaseModel):
    """A ledger record: base columns plus the fields the caller may see (masked ones masked)."""

    model_config = ConfigDict(extra="allow")

    id: int = Field(description="记录编号")
    region_code: str = Field(description="所属区划代码（村/社区或网格）")
    version: int = Field(description="版本号，修改时用于并发控制")
    created_at: datetime
    updated_at: datetime
    provenance: dict[str, Any] | None = Field(None, description="各字段当前值的来源：source、at、actor")
    flags: dict[str, Any] | None = Field(None, description="记录上的警示标记，如信用代码校验位不符")


class RecordPage(BaseModel):
    items: list[RecordOut]
    next_cursor: str | None = Field(description="下一页游标；为空表示没有更多")
    limit: int


class HistoryEntry(BaseModel):
    id: int
    op: str = Field(
        description="create / update / delete；link / unlink 为关联变更（field 为关系名，值为对方记录编号）"
    )
    field: str | None
    before: str | None
    after: str | None
    source: str = Field(description="数据来源")
    actor: str = Field(description="操作人")
    at: datetime


class HistoryPage(BaseModel):
    items: list[HistoryEntry]
    next_before: int | None


class RelatedPage(BaseModel):
    ledger: str = Field(description="关联记录所在台账")
    relation: str
    items: list[dict[str, Any]]
