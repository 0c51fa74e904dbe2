"""/api/v1/ledgers/{ledger}/records: CRUD, filtered keyset lists, history and related records."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response

from app.auth.deps import CallerCredentials, CurrentPrincipal
from app.db.deps import Session
from app.jsonresponse import JSON
from app.ledger import fastread, related, service
from app.ledger.schemas import HistoryPage, RecordOut, RecordPage, RelatedPage

router = APIRouter(prefix="/ledgers", tags=["台账记录"])

LedgerCode = Annotated[
    str, Path(description="台账代码，如 person、house、disability", pattern=r"^[a-z][a-z0-9_]{0,40}$")
]
RecordId = Annotated[int, Path(description="记录编号", ge=1, le=2**63 - 1)]


def _record(record: dict[str, Any], status_code: int = 200, headers: dict[str, Any] | None = None) -> JSON:
    # Returned directly: records are open objects, so validating them through a model would only cost.
    return JSON(
        record, status_code=status_code, headers={"ETag": f'W/"{record["version"]}"', **(headers or {})}
    )


@router.get(
    "/{ledger}/records",
    response_model=None,
    responses={200: {"model": RecordPage}},
    summary="列出记录（筛选、排序、游标分页）",
)
async def list_records(
    request: Request,
    creds: CallerCredentials,
    ledger: LedgerCode,
    order: Annotated[str | None, Query(description="排序，如 birth_date.desc,name；总以 id 收尾")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="每页条数")] = 50,
    cursor: Annotated[str | None, Query(description="上一页返回的 next_cursor")] = None,
) -> JSON:
    """Filters are query parameters named after fields:
    `?sex=eq.2&birth_date=gte.1950-01-01&region_code=prefix.500118101`.
    Operators: eq, ne, in (comma separated), gt, gte, lt, lte, prefix, is_null (true/false)."""
    params = list(request.query_params.multi_items())
    return JSON(
        await fastread.answer(
            request,
            creds,
            lambda reads, access: fastread.list_records(
                reads, access, ledger, params, order=order, limit=limit, cursor=cursor
            ),
            lambda s, principal: service.list_records(
                s, principal, ledger, params, order=order, limit=limit, cursor=cursor
            ),
        )
    )


@router.post(
    "/{ledger}/records",
    response_model=None,
    responses={201: {"model": RecordOut}},
    status_code=201,
    summary="新增记录",
)
async def create_record(
    session: Session,
    principal: CurrentPrincipal,
    ledger: LedgerCode,
    body: Annotated[
        dict[str, Any],
        Body(
            description="region_code（扩展台账为 parent_id）及各字段值",
            examples=[{"region_code": "500118101001", "name": "张三", "id_number": "500118199001011234"}],
        ),
    ],
) -> JSON:
    record = await service.create_record(session, principal, ledger, body)
    return _record(record, 201, {"Location": f"/api/v1/ledgers/{ledger}/records/{record['id']}"})


@router.get(
    "/{ledger}/records/{record_id}",
    response_model=None,
    responses={200: {"model": RecordOut}},
    summary="读取一条记录",
)
async def get_record(
    request: Request, creds: CallerCredentials, ledger: LedgerCode, record_id: RecordId
) -> JSON:
    return _record(
        await fastread.answer(
            request,
            creds,
            lambda reads, access: fastread.get_record(reads, access, ledger, record_id),
            lambda s, principal: service.get_record(s, principal, ledger, record_id),
        )
    )


@router.patch(
    "/{ledger}/records/{record_id}",
    response_model=None,
    responses={200: {"model": RecordOut}},
    summary="修改记录（部分字段）",
)
async def update_record(
    session: Session,
    principal: CurrentPrincipal,
    ledger: LedgerCode,
    record_id: RecordId,
    body: Annotated[dict[str, Any], Body(description="要修改的字段；版本号放在 If-Match 头或 version 字段")],
    if_match: Annotated[str | None, Header(description='记录版本，如 W/"3"')] = None,
) -> JSON:
    return _record(await service.update_record(session, principal, ledger, record_id, body, if_match))


@router.delete("/{ledger}/records/{record_id}", status_code=204, summary="删除记录（保留历史）")
async def delete_record(
    session: Session,
    principal: CurrentPrincipal,
    ledger: LedgerCode,
    record_id: RecordId,
    if_match: Annotated[str | None, Header(description='记录版本，如 W/"3"')] = None,
) -> Response:
    await service.delete_record(session, principal, ledger, record_id, if_match)
    return Response(status_code=204)


@router.get(
    "/{ledger}/records/{record_id}/history",
    response_model=None,
    responses={200: {"model": HistoryPage}},
    summary="记录变更历史",
)
async def record_history(
    session: Session,
    principal: CurrentPrincipal,
    ledger: LedgerCode,
    record_id: RecordId,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="上一页返回的 next_before")] = None,
) -> JSON:
    return JSON(
        await service.record_history(session, principal, ledger, record_id, limit=limit, before=before)
    )


@router.get(
    "/{ledger}/records/{record_id}/related/{name}",
    response_model=None,
    responses={200: {"model": RelatedPage}},
    summary="关联记录",
)
async def related_records(
    session: Session,
    principal: CurrentPrincipal,
    ledger: LedgerCode,
    record_id: RecordId,
    name: Annotated[
        str, Path(description="关系名（如 residence、residents）或专题台账代码（如 disability）")
    ],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSON:
    return JSON(await related.related_records(session, principal, ledger, record_id, name, limit=limit))


relations_router = APIRouter(prefix="/relations", tags=["台账记录"])


@relations_router.post("/{relation}", status_code=201, summary="建立关联（如居住、户成员、土地承包）")
async def create_link(
    session: Session,
    principal: CurrentPrincipal,
    relation: Annotated[str, Path(description="关系代码，如 residence、household_member")],
    body: Annotated[dict[str, Any], Body(examples=[{"from_id": 1, "to_id": 2, "since": "2024-05-01"}])],
) -> dict[str, Any]:
    return await related.create_link(session, principal, relation, body)


@relations_router.delete("/{relation}/{link_id}", status_code=204, summary="解除关联")
async def delete_link(
    session: Session,
    principal: CurrentPrincipal,
    relation: Annotated[str, Path(description="关系代码")],
    link_id: RecordId,
) -> Response:
    await related.delete_link(session, principal, relation, link_id)
    return Response(status_code=204)
