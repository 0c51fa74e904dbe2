"""Response models of the report API, for the OpenAPI document.

The endpoints build their answers as dicts (orjson, no re-validation on the hot path); these models
describe exactly those dicts, and `tests/report/test_response_models.py` checks real answers against them.
Keys that only some answers carry are optional; report cells are JSON values typed by their column.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.problem_responses import PROBLEM_CONTENT

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# ---- problems -----------------------------------------------------------------------------------


class FieldErrorOut(_Out):
    path: str = Field(description="出错位置，如 body.columns.3.path、query.period、xlsx.D7")
    code: str
    message: str


_ZH = {
    400: "请求有误",
    401: "未登录或凭证无效",
    403: "无权执行此操作",
    404: "不存在或无权访问",
    409: "当前状态不允许此操作",
    413: "上传内容过大",
    422: "提交的数据未通过校验",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the problem+json answers an endpoint can give (401 always), beyond the
    ones app/problem_responses.py declares on every operation (e.g. 409 on a read); one Problem schema."""
    return {s: {"description": _ZH[s], **PROBLEM_CONTENT} for s in sorted({401, *statuses})}


def file_response(media: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media: {"schema": {"type": "string", "format": "binary"}}},
    }


# ---- templates ----------------------------------------------------------------------------------


class TemplateSummary(_Out):
    id: int
    code: str
    name: str
    department_code: str
    latest_version: int
    state: str = Field(description="最新版本状态：draft / submitted / approved / refused")
    pull_only: bool


class TemplateList(_Out):
    items: list[TemplateSummary]


class VersionOut(_Out):
    version: int
    state: str
    pull_only: bool
    reason: str | None
    created_by: str
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None


class TemplateTransitionOut(_Out):
    version: int
    from_: str | None = Field(alias="from")
    to: str
    actor: str
    at: datetime
    note: str | None


class TemplateOut(_Out):
    id: int
    code: str
    name: str
    department_code: str
    latest_version: int
    state: str
    pull_only: bool
    active_version: int | None = Field(description="当前生效（已准入）的版本")
    spec: dict[str, Any] = Field(description="最新版本的模板 JSON")
    analysis: dict[str, Any] | None = Field(description="提交时冻结的准入分析")
    versions: list[VersionOut]
    transitions: list[TemplateTransitionOut]


class TownshipCost(_Out):
    township_code: str
    township_name: str
    rows: int
    typed_cells: int


class CatalogueGap(_Out):
    column: str
    field: str


class Overlap(_Out):
    template_id: int
    code: str
    name: str
    department_code: str
    version: int
    fields: list[str]
    gap_labels: list[str]


class AnalysisOut(_Out):
    version: int
    state: str
    pull_only: bool
    columns: int
    covered_columns: list[str]
    gap_columns: list[str]
    write_back_columns: list[str]
    coverage_ratio: float
    townships: list[TownshipCost]
    typed_cells_per_township: float
    typed_cells_total: int
    fields: list[str]
    gaps_in_catalogue: list[CatalogueGap]
    overlap: list[Overlap]
    ungranted: list[FieldErrorOut]


class DispatchedTask(_Out):
    id: int
    township_code: str
    township_name: str
    rows: int


class DispatchOut(_Out):
    template_id: int
    version: int
    period: str
    deadline: date
    created: int
    existing: int
    tasks: list[DispatchedTask]


# ---- columns and aggregates ---------------------------------------------------------------------


class Withheld(_Out):
    code: str = Field(description="access.field_hidden / access.field_masked / report.source_restricted")
    reason: str


class RequiredWhenOut(_Out):
    expr: str = Field(description="条件（列代码），如 disabled > 0")
    message: str = Field(description="中文说明，如 当“残疾人数 > 0”时必填")


class RuleOut(_Out):
    kind: str = Field(description="check：同一行内跨列校验")
    expr: str = Field(description="条件（列代码），如 visited <= households")
    column: str = Field(description="不满足时标注的列")
    columns: list[str] = Field(description="条件读取的列")
    message: str


class ColumnOut(_Out):
    code: str
    label: str
    kind: str = Field(description="field / formula / ratio / aggregate / gap")
    type: str
    editable: bool
    required: bool
    path: str | None = None
    ledger_field: str | None = None
    source: str | None = None
    help: str | None = None
    codelist: str | None = None
    fn: str | None = None
    masked: bool | None = Field(None, description="对本读者脱敏")
    write_back: str | None = None
    withheld: Withheld | None = Field(None, description="本读者无权读取：该列单元格为空")
    required_when: RequiredWhenOut | None = Field(None, description="条件必填（空缺列）：满足条件时必填")


class AggregateTemplateRef(_Out):
    id: int
    code: str
    name: str
    version: int
    department_code: str
    kind: str
    pull_only: bool


class AggregateTask(_Out):
    id: int
    township_code: str
    township_name: str
    state: str
    included: bool
    rows: int
    prefilled_at: datetime | None
    submitted_at: datetime | None
    approved_at: datetime | None


class AggregateItem(_Out):
    key: str
    label: str | None
    region_code: str | None
    cells: dict[str, Any] = Field(description="列代码 → 值；对本读者隐藏的列不出现")
    record_id: int | None = None
    township_code: str | None = None
    township_name: str | None = None
    townships: int | None = Field(None, description="合并行：来自几个镇街")


class AggregateOut(_Out):
    template: AggregateTemplateRef
    period: str | None
    generated_at: datetime
    source: str = Field(description="tasks（镇街任务汇总）/ ledger_live（台账直取）")
    complete: bool | None = Field(None, description="任务汇总：是否全部已审核通过")
    columns: list[ColumnOut]
    tasks: list[AggregateTask]
    items: list[AggregateItem]
    total: AggregateItem | None


# ---- tasks --------------------------------------------------------------------------------------


class TaskTemplateRef(_Out):
    id: int
    code: str
    name: str
    version: int
    department_code: str


class TaskHead(_Out):
    id: int
    template: TaskTemplateRef
    period: str
    township_code: str
    township_name: str
    state: str
    overdue: bool
    deadline: date
    dispatched_at: datetime
    prefilled_at: datetime | None
    first_opened_at: datetime | None
    submitted_at: datetime | None
    approved_at: datetime | None
    rows: int


class TaskList(_Out):
    items: list[TaskHead]


class RecordLink(_Out):
    ledger: str | None
    id: int
    href: str


class TaskRow(_Out):
    key: str
    no: int
    label: str | None
    region_code: str | None
    record: RecordLink | None
    cells: dict[str, Any] = Field(description="列代码 → 值，按本读者的权限裁剪")
    provenance: dict[str, Any]
    gap_origin: dict[str, str]


class RejectOut(_Out):
    row_key: str
    column_code: str
    sheet_cell: str
    raw: str | None
    code: str
    reason: str
    at: datetime


class CommentOut(_Out):
    id: int
    row: str | None
    column: str | None
    body: str
    author: str
    at: datetime


class TaskTransitionOut(_Out):
    from_: str | None = Field(alias="from")
    to: str
    actor: str
    at: datetime
    note: str | None


class TaskView(TaskHead):
    kind: str
    ledger: str
    instructions: str | None
    editable: bool
    columns: list[ColumnOut]
    rules: list[RuleOut] = Field(description="同一行内跨列校验规则：保存、上传与提交时检查")
    items: list[TaskRow]
    limit: int
    offset: int
    missing_required: int
    rejects: list[RejectOut]
    comments: list[CommentOut]
    transitions: list[TaskTransitionOut]


class SubmitOut(TaskHead):
    written_back: int


class SavedOut(_Out):
    saved: int
    state: str


class UploadReject(_Out):
    row: int | str | None = Field(None, description="表格行号")
    column: str | None = Field(None, description="表格列字母")
    row_key: str
    column_code: str
    column_label: str | None
    code: str
    reason: str


class UploadOut(SavedOut):
    rejected: int
    rejects: list[UploadReject]
    rows_read: int
    columns_read: int


class RefreshOut(_Out):
    id: int
    rows: int
    prefilled_at: datetime | None


# ---- metrics ------------------------------------------------------------------------------------


class TownshipBurden(_Out):
    township_code: str
    township_name: str
    month: str
    tasks: int
    cells: int
    auto_filled_cells: int
    typed_cells: int
    submitted_tasks: int
    avg_minutes_open_to_submit: float | None
    median_minutes_open_to_submit: float | None
    auto_fill_ratio: float | None


class DepartmentBurden(_Out):
    department_code: str
    template_id: int
    template_name: str
    version: int
    period: str
    dispatched_at: datetime
    tasks: int
    approved_tasks: int
    completed_at: datetime | None
    minutes_dispatch_to_last_approval: float | None


class BurdenOut(_Out):
    month: str | None
    townships: list[TownshipBurden]
    departments: list[DepartmentBurden]
