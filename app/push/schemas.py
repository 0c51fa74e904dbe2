"""Response shapes of /api/v1/push (documented in the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class PushOutcome(BaseModel):
    index: int = Field(description="记录在请求中的序号（从 0 开始）")
    source_event_id: str | None
    status: Literal["applied", "unchanged", "superseded", "already_applied", "rejected"] = Field(
        description="applied 已更新；unchanged 无变化；superseded 已有更晚生效的值，仅记入历史；"
        "already_applied 该事件已处理过；rejected 未处理（见 reason）"
    )
    record_id: int | None
    fields: list[str] = Field(default_factory=list, description="本事件改变的数据项")
    superseded: list[str] = Field(default_factory=list, description="因生效时间较早而未采用的数据项")
    reason_code: str | None = None
    reason: str | None = None


class PushCounts(BaseModel):
    applied: int
    unchanged: int
    superseded: int
    already_applied: int
    rejected: int


class PushResult(BaseModel):
    ledger: str
    source: str = Field(description="推送部门代码")
    received: int
    counts: PushCounts
    results: list[PushOutcome]


class SourceState(BaseModel):
    source: str
    name: str
    short: str
    frequency: str
    tolerance: float
    last_push_at: datetime | None
    last_records: int
    due_by: datetime | None
    state: Literal["fresh", "stale", "never"]
    stale_since: datetime | None


class SourceList(BaseModel):
    items: list[SourceState]


class Change(BaseModel):
    id: int
    record_id: int
    region_code: str
    op: str = Field(description="create | update | superseded | delete")
    field: str | None
    before: str | None
    after: str | None
    source: str
    source_event_id: str
    source_label: str = Field(description="如“民政 / E1”")
    at: datetime


class ChangePage(BaseModel):
    items: list[Change]
    next_since: int
    more: bool
