"""/api/v1/report-templates, /api/v1/report-tasks and /api/v1/metrics/burden."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, File, Path, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from app.auth.deps import CurrentPrincipal
from app.db.deps import Session
from app.jsonresponse import JSON
from app.report import (
    admission,
    aggregate,
    dispatch,
    export,
    metrics,
    reader,
    review,
    schemas as S,
    templates,
)
from app.report.common import latest_version, load_template
from app.report.tasks import cells, listing, submit, view, xlsx
from app.sheets.reader import refused

templates_router = APIRouter(prefix="/report-templates", tags=["报表模板"])
tasks_router = APIRouter(prefix="/report-tasks", tags=["报表任务"])
metrics_router = APIRouter(prefix="/metrics", tags=["减负指标"])
routers = (templates_router, tasks_router, metrics_router)

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UPLOAD = 20 * 1024 * 1024
# One list template and one aggregate template, as in docs/reports.md: a reader of the document (and
# schemathesis's examples phase) gets bodies the compiler accepts, not only free-form objects.
TEMPLATE_EXAMPLES = [
    {
        "code": "dis_visit",
        "name": "残疾人走访月报",
        "kind": "list",
        "ledger": "person",
        "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
        "columns": [
            {"kind": "field", "code": "name", "path": "name"},
            {"kind": "field", "code": "dtype", "path": "disability.disability_type"},
            {"kind": "gap", "code": "visited", "label": "本月是否走访", "type": "boolean", "required": True},
        ],
    },
    {
        "code": "dis_by_village",
        "name": "各村残疾人统计",
        "kind": "aggregate",
        "ledger": "person",
        "rows": {"by": "village"},
        "columns": [
            {"kind": "aggregate", "code": "persons", "label": "人口数", "fn": "count"},
            {"kind": "gap", "code": "visits", "label": "本月走访人次", "type": "integer", "min": 0},
        ],
    },
]
TemplateBody = Annotated[
    dict[str, Any],
    Body(description="报表模板 JSON，结构见 schemas/report_template.schema.json", examples=TEMPLATE_EXAMPLES),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DispatchIn(_In):
    period: str = Field(max_length=20, description="报告期：2026-11 / 2026-Q4 / 2026 / 一次性标签")
    townships: list[str] | None = Field(
        None, max_length=2000, description="目标镇街区划代码；缺省为辖区全部镇街"
    )
    deadline: date | None = Field(None, description="截止日期；缺省按模板规则")


class DecisionIn(_In):
    reason: str | None = Field(None, max_length=500, description="不予准入时必填")


class CellIn(_In):
    row: str = Field(max_length=40, description="行键")
    column: str = Field(max_length=41, description="列代码")
    value: Any = None


class CellsIn(_In):
    cells: list[CellIn] = Field(max_length=5000)


class CellValueIn(_In):
    value: Any = None


class CellCommentIn(_In):
    row: str = Field(max_length=40)
    column: str | None = Field(None, max_length=41)
    comment: str | None = Field(None, max_length=1000)


class ReturnIn(_In):
    comment: str = Field(max_length=2000, description="退回意见")
    cells: list[CellCommentIn] = Field(default_factory=list, max_length=500)


class ApproveIn(_In):
    comment: str | None = Field(None, max_length=2000)


def _file(content: bytes, name: str, media: str) -> Response:
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


async def _cut(session, principal, view: dict) -> dict:
    """A template as this reader may see it: the frozen analysis's counts cut to its scope."""
    return {**view, "analysis": await reader.cut_analysis(session, principal, view["spec"], view["analysis"])}


# ---- templates --------------------------------------------------------------------------------


@templates_router.post(
    "",
    status_code=201,
    response_model=None,
    responses={201: {"model": S.TemplateOut}, **S.problems(403, 409, 422)},
    summary="定义报表模板（草稿）",
)
async def create_template(session: Session, principal: CurrentPrincipal, body: TemplateBody) -> JSON:
    return JSON(
        await _cut(session, principal, await templates.create_template(session, principal, body)),
        status_code=201,
    )


@templates_router.get(
    "",
    response_model=None,
    responses={200: {"model": S.TemplateList}, **S.problems()},
    summary="列出报表模板",
)
async def list_templates(session: Session, principal: CurrentPrincipal) -> JSON:
    return JSON({"items": await templates.list_templates(session, principal)})


@templates_router.get(
    "/{template_id}",
    response_model=None,
    responses={200: {"model": S.TemplateOut}, **S.problems(403, 404, 422)},
    summary="读取报表模板（含版本与准入记录）",
)
async def get_template(session: Session, principal: CurrentPrincipal, template_id: Id) -> JSON:
    t = await load_template(session, principal, template_id)
    return JSON(await _cut(session, principal, await templates.template_view(session, t)))


@templates_router.put(
    "/{template_id}",
    response_model=None,
    responses={200: {"model": S.TemplateOut}, **S.problems(400, 403, 404, 422)},
    summary="修改模板：草稿就地修改，否则新建版本",
)
async def put_template(
    session: Session, principal: CurrentPrincipal, template_id: Id, body: TemplateBody
) -> JSON:
    t = await load_template(session, principal, template_id, write=True)
    return JSON(await _cut(session, principal, await templates.new_version(session, principal, t, body)))


@templates_router.get(
    "/{template_id}/analysis",
    response_model=None,
    responses={200: {"model": S.AnalysisOut}, **S.problems(403, 404, 422)},
    summary="准入分析（按当前台账实时计算）",
)
async def analysis(session: Session, principal: CurrentPrincipal, template_id: Id) -> JSON:
    t = await load_template(session, principal, template_id)
    out = await admission.live_analysis(session, principal, t)
    latest = await latest_version(session, t)
    assert latest is not None  # a template is created with its first version
    spec = latest.spec
    return JSON(await reader.cut_analysis(session, principal, spec, out))


@templates_router.post(
    "/{template_id}/submit",
    response_model=None,
    responses={200: {"model": S.TemplateOut}, **S.problems(403, 404, 409, 422)},
    summary="提交准入",
)
async def submit_template(session: Session, principal: CurrentPrincipal, template_id: Id) -> JSON:
    t = await load_template(session, principal, template_id, write=True)
    return JSON(await _cut(session, principal, await admission.submit(session, principal, t)))


@templates_router.post(
    "/{template_id}/approve",
    response_model=None,
    responses={200: {"model": S.TemplateOut}, **S.problems(400, 403, 404, 409, 422)},
    summary="准入通过（平台管理员）",
)
async def approve_template(
    session: Session, principal: CurrentPrincipal, template_id: Id, body: DecisionIn | None = None
) -> JSON:
    t = await load_template(session, principal, template_id)
    return JSON(
        await _cut(
            session,
            principal,
            await admission.decide(session, principal, t, approve=True, reason=body.reason if body else None),
        )
    )


@templates_router.post(
    "/{template_id}/refuse",
    response_model=None,
    responses={200: {"model": S.TemplateOut}, **S.problems(400, 403, 404, 409, 422)},
    summary="不予准入（平台管理员，须说明理由）",
)
async def refuse_template(
    session: Session, principal: CurrentPrincipal, template_id: Id, body: DecisionIn
) -> JSON:
    t = await load_template(session, principal, template_id)
    return JSON(
        await _cut(
            session,
            principal,
            await admission.decide(session, principal, t, approve=False, reason=body.reason),
        )
    )


@templates_router.post(
    "/{template_id}/dispatch",
    response_model=None,
    responses={200: {"model": S.DispatchOut}, **S.problems(400, 403, 404, 409, 422)},
    summary="一键下派到各镇街",
)
async def dispatch_template(
    session: Session, principal: CurrentPrincipal, template_id: Id, body: DispatchIn
) -> JSON:
    t = await load_template(session, principal, template_id, write=True)
    return JSON(
        await dispatch.dispatch(
            session, principal, t, period=body.period, townships=body.townships, deadline=body.deadline
        )
    )


@templates_router.get(
    "/{template_id}/aggregate",
    response_model=None,
    responses={
        200: {
            "model": S.AggregateOut,
            "content": {
                "text/csv": S.file_response("text/csv", "")["content"]["text/csv"],
                XLSX: S.file_response(XLSX, "")["content"][XLSX],
            },
        },
        **S.problems(403, 404, 409, 422),
    },
    summary="汇总（JSON / CSV / XLSX）",
)
async def aggregate_template(
    session: Session,
    principal: CurrentPrincipal,
    template_id: Id,
    period: Annotated[str | None, Query(max_length=20, description="报告期；台账直取模板可省略")] = None,
    states: Annotated[str, Query(description="计入的任务状态，逗号分隔")] = "approved",
    format: Annotated[Literal["json", "csv", "xlsx"], Query(description="输出格式")] = "json",  # noqa: A002
) -> Response:
    t = await load_template(session, principal, template_id)
    wanted = {s for s in states.split(",") if s}
    result = await aggregate.collect(session, principal, t, period=period, states=wanted)
    name = f"{t.name}-{period or '实时'}"
    if format == "csv":
        return _file(export.to_csv(result), name + ".csv", "text/csv; charset=utf-8")
    if format == "xlsx":
        return _file(export.to_xlsx(result), name + ".xlsx", XLSX)
    return JSON(result)


# ---- tasks ------------------------------------------------------------------------------------


@tasks_router.get(
    "",
    response_model=None,
    responses={200: {"model": S.TaskList}, **S.problems(422)},
    summary="列出报表任务（镇街：本镇街；部门：本部门模板）",
)
async def list_tasks(
    session: Session,
    principal: CurrentPrincipal,
    period: Annotated[str | None, Query(max_length=20)] = None,
    state: Annotated[str | None, Query(max_length=12)] = None,
    template_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> JSON:
    return JSON(
        {
            "items": await listing.list_tasks(
                session, principal, period=period, state=state, template_id=template_id
            )
        }
    )


@tasks_router.get(
    "/{task_id}",
    response_model=None,
    responses={200: {"model": S.TaskView}, **S.problems(403, 404, 422)},
    summary="打开任务：预填数据、空缺单元格、意见与流转记录",
)
async def get_task(
    session: Session,
    principal: CurrentPrincipal,
    task_id: Id,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> JSON:
    return JSON(await view.open_task(session, principal, task_id, limit=limit, offset=offset))


@tasks_router.put(
    "/{task_id}/cells",
    response_model=None,
    responses={200: {"model": S.SavedOut}, **S.problems(400, 403, 404, 409, 422)},
    summary="批量保存空缺单元格",
)
async def put_cells(session: Session, principal: CurrentPrincipal, task_id: Id, body: CellsIn) -> JSON:
    items = [c.model_dump() for c in body.cells]
    return JSON(await cells.save_cells(session, principal, task_id, items))


@tasks_router.put(
    "/{task_id}/cells/{row}/{column}",
    response_model=None,
    responses={200: {"model": S.SavedOut}, **S.problems(400, 403, 404, 409, 422)},
    summary="保存一个空缺单元格",
)
async def put_cell(
    session: Session,
    principal: CurrentPrincipal,
    task_id: Id,
    row: Annotated[str, Path(max_length=40)],
    column: Annotated[str, Path(max_length=41)],
    body: CellValueIn,
) -> JSON:
    return JSON(
        await cells.save_cells(
            session,
            principal,
            task_id,
            [{"row": row, "column": column, "value": body.value}],
            path_prefix="body",
        )
    )


@tasks_router.post(
    "/{task_id}/refresh",
    response_model=None,
    responses={200: {"model": S.RefreshOut}, **S.problems(403, 404, 409, 422)},
    summary="按台账最新数据重新预填（提交前）",
)
async def refresh_task(session: Session, principal: CurrentPrincipal, task_id: Id) -> JSON:
    from app.report.common import spec_of
    from app.report.tasks.access import refreshable_task

    task, version, template = await refreshable_task(session, principal, task_id)
    rows = await dispatch.refresh(session, principal, task, template, spec_of(version))
    return JSON({"id": task.id, "rows": rows, "prefilled_at": task.prefilled_at})


@tasks_router.get(
    "/{task_id}/xlsx",
    response_model=None,
    response_class=Response,
    responses={200: S.file_response(XLSX, "任务表格（XLSX）"), **S.problems(403, 404, 422)},
    summary="下载任务表格（XLSX，黄色为待填列）",
)
async def download(session: Session, principal: CurrentPrincipal, task_id: Id) -> Response:
    content, name = await xlsx.download_xlsx(session, principal, task_id)
    return _file(content, name, XLSX)


@tasks_router.post(
    "/{task_id}/xlsx",
    response_model=None,
    responses={200: {"model": S.UploadOut}, **S.problems(400, 403, 404, 409, 413, 422)},
    summary="上传填好的任务表格",
)
async def upload(
    session: Session,
    principal: CurrentPrincipal,
    task_id: Id,
    file: Annotated[UploadFile, File(description="从本任务下载并填写的 XLSX")],
) -> JSON:
    content = await file.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        raise refused(413, "xlsx.file_too_large", "文件不能超过 20 MB")
    return JSON(await xlsx.upload_xlsx(session, principal, task_id, content))


@tasks_router.post(
    "/{task_id}/submit",
    response_model=None,
    responses={200: {"model": S.SubmitOut}, **S.problems(403, 404, 409, 422)},
    summary="提交（必填空缺须已填写）",
)
async def submit_task(session: Session, principal: CurrentPrincipal, task_id: Id) -> JSON:
    return JSON(await submit.submit(session, principal, task_id))


@tasks_router.post(
    "/{task_id}/return",
    response_model=None,
    responses={200: {"model": S.TaskHead}, **S.problems(400, 403, 404, 409, 422)},
    summary="退回修改（部门，附意见）",
)
async def return_task(session: Session, principal: CurrentPrincipal, task_id: Id, body: ReturnIn) -> JSON:
    return JSON(
        await review.return_task(
            session, principal, task_id, comment=body.comment, cells=[c.model_dump() for c in body.cells]
        )
    )


@tasks_router.post(
    "/{task_id}/approve",
    response_model=None,
    responses={200: {"model": S.TaskHead}, **S.problems(400, 403, 404, 409, 422)},
    summary="审核通过（部门）",
)
async def approve_task(
    session: Session, principal: CurrentPrincipal, task_id: Id, body: ApproveIn | None = None
) -> JSON:
    return JSON(
        await review.approve_task(session, principal, task_id, comment=body.comment if body else None)
    )


# ---- metrics ----------------------------------------------------------------------------------


@metrics_router.get(
    "/burden",
    response_model=None,
    responses={200: {"model": S.BurdenOut}, **S.problems(422)},
    summary="减负指标：各镇街每月任务、单元格、自动填充率、填报用时",
)
async def burden(
    session: Session,
    principal: CurrentPrincipal,
    month: Annotated[str | None, Query(max_length=7, description="YYYY-MM（按下派时间）")] = None,
    township: Annotated[str | None, Query(max_length=12, pattern=r"^\d{9,12}$")] = None,
) -> JSON:
    return JSON(await metrics.burden(session, principal, month=month, township=township))
