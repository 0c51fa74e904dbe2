"""/api/v1/imports: legacy sheet import jobs (upload, sheet, mapping, dry run, rejects, review, commit, undo)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from app.auth.deps import CurrentPrincipal
from app.db.deps import Session
from app.errors import Problem
from app.imports import commit as commit_job, jobs, rejects, undo
from app.jsonresponse import JSON
from app.report.schemas import file_response, problems

router = APIRouter(prefix="/imports", tags=["存量数据导入"])
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_IMPORT_BYTES = 100 * 1024 * 1024
Outcome = Literal["create", "update", "unchanged", "duplicate", "candidate", "error"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SheetIn(_In):
    sheet: str = Field(max_length=100, description="工作表名称")


class MappingIn(_In):
    columns: dict[int, str | None] = Field(
        max_length=256, description="列序号（从 0 起）→ 字段路径；null 表示不导入该列"
    )


async def _summary(session: Any, principal: Any, batch_id: int) -> JSON:
    return JSON(jobs.summary(await jobs.load_batch(session, principal, batch_id)))


@router.post(
    "",
    response_model=None,
    status_code=201,
    responses={201: {"description": "已上传，返回批次"}, **problems(403, 404, 413, 422)},
    summary="上传存量台账表格（XLSX/XLS/CSV）",
)
async def upload(
    session: Session,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="镇街存量表格")],
    ledger: Annotated[str, Form(max_length=41, description="目标台账，如 person")],
    township: Annotated[str, Form(max_length=12, description="导入镇街区划代码（9 或 12 位）")],
    sheet: Annotated[str | None, Form(max_length=100, description="工作表；缺省为第一个")] = None,
    form_name: Annotated[str | None, Form(max_length=200, description="原报表名称（复用列映射）")] = None,
) -> JSON:
    # The request body is capped by the input guard before any of it is read; this caps the file itself.
    if file.size is not None and file.size > MAX_IMPORT_BYTES:
        raise Problem(413, "import.file_too_large", "文件不能超过 100 MB")
    content = await file.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        raise Problem(413, "import.file_too_large", "文件不能超过 100 MB")
    batch = await jobs.upload(
        session,
        principal,
        ledger=ledger,
        township=township,
        file_name=file.filename or "upload.xlsx",
        content=content,
        sheet=sheet,
        form_name=form_name,
    )
    return JSON(jobs.summary(batch), status_code=201)


@router.get(
    "/{batch_id}",
    response_model=None,
    responses=problems(404),
    summary="导入批次：状态、列映射、计数（读取/新增/更新/未变/文件内重复/疑似重复/错误）与进度",
)
async def get_batch(session: Session, principal: CurrentPrincipal, batch_id: Id) -> JSON:
    return await _summary(session, principal, batch_id)


@router.post(
    "/{batch_id}/sheet",
    response_model=None,
    responses=problems(403, 404, 409, 422),
    summary="选择工作表（重新读取）",
)
async def choose_sheet(session: Session, principal: CurrentPrincipal, batch_id: Id, body: SheetIn) -> JSON:
    return JSON(jobs.summary(await jobs.choose_sheet(session, principal, batch_id, body.sheet)))


@router.put(
    "/{batch_id}/mapping", response_model=None, responses=problems(403, 404, 409, 422), summary="调整列映射"
)
async def set_mapping(session: Session, principal: CurrentPrincipal, batch_id: Id, body: MappingIn) -> JSON:
    return JSON(jobs.summary(await jobs.set_mapping(session, principal, batch_id, body.columns)))


@router.post(
    "/{batch_id}/dry-run",
    response_model=None,
    responses=problems(403, 404, 409, 422),
    summary="试导入：逐行给出新增/更新/未变/重复/疑似重复/错误及原因",
)
async def dry_run(session: Session, principal: CurrentPrincipal, batch_id: Id) -> JSON:
    return JSON(jobs.summary(await jobs.dry_run(session, principal, batch_id)))


@router.get(
    "/{batch_id}/rows",
    response_model=None,
    responses=problems(404),
    summary="逐行结果（行号、结果、问题：列、原值、原因）",
)
async def rows(
    session: Session,
    principal: CurrentPrincipal,
    batch_id: Id,
    outcome: Annotated[Outcome | None, Query(description="只看某种结果")] = None,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="从该行号之后开始")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSON:
    return JSON(
        await jobs.list_rows(session, principal, batch_id, outcome=outcome, after_row=after, limit=limit)
    )


@router.get(
    "/{batch_id}/rejects.xlsx",
    response_model=None,
    response_class=Response,
    responses={200: file_response(XLSX, "错误行（XLSX，修正后可重新上传）"), **problems(404)},
    summary="下载错误行表格",
)
async def rejects_file(session: Session, principal: CurrentPrincipal, batch_id: Id) -> Response:
    content, name = await rejects.rejects_xlsx(session, principal, batch_id)
    return Response(
        content,
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


@router.post(
    "/{batch_id}/submit", response_model=None, responses=problems(403, 404, 409), summary="提交区级审核"
)
async def submit(session: Session, principal: CurrentPrincipal, batch_id: Id) -> JSON:
    return JSON(jobs.summary(await jobs.submit(session, principal, batch_id)))


@router.post(
    "/{batch_id}/approve",
    response_model=None,
    responses=problems(403, 404, 409),
    summary="审核通过（仅区级审核人员）",
)
async def approve(session: Session, principal: CurrentPrincipal, batch_id: Id) -> JSON:
    return JSON(jobs.summary(await jobs.approve(session, principal, batch_id)))


@router.post(
    "/{batch_id}/commit",
    response_model=None,
    responses=problems(403, 404, 409),
    summary="正式导入（整批原子提交）",
)
async def commit(session: Session, principal: CurrentPrincipal, batch_id: Id) -> JSON:
    return JSON(jobs.summary(await commit_job.commit(session, principal, batch_id)))


@router.post(
    "/{batch_id}/undo",
    response_model=None,
    responses=problems(403, 404, 409),
    summary="撤销导入（导入后被修改的字段作为冲突列出，不覆盖）",
)
async def undo_batch(session: Session, principal: CurrentPrincipal, batch_id: Id) -> JSON:
    return JSON(await undo.undo(session, principal, batch_id))
