"""/api/v1/push: department systems feed the items they own (行业反哺); feed and freshness."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from app.access.audit import append
from app.auth.deps import CurrentPrincipal
from app.catalog.loader import get_catalog
from app.db.deps import Session
from app.errors import problem_response
from app.jsonresponse import JSON
from app.problem_responses import PROBLEM_CONTENT
from app.push import feed, freshness
from app.push.apply import PushRefused, apply_push, ledger_or_404
from app.push.bodies import ALL_TYPES, read_body
from app.push.schemas import ChangePage, PushResult, SourceList

router = APIRouter(prefix="/push", tags=["部门数据推送"])
LedgerCode = Annotated[
    str, Path(description="台账代码，如 person、disability", pattern=r"^[a-z][a-z0-9_]{0,40}$")
]
_RECORD_EXAMPLE = [
    {
        "source_event_id": "MZ-2024-0001",
        "effective_at": "2024-05-01",
        "id_number": "500118199001011234",
        "low_income_status": "1",
    }
]
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"type": "object"}},
                "example": _RECORD_EXAMPLE,
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}
            },
        },
    }
}


@router.post(
    "/{ledger}",
    response_model=PushResult,
    openapi_extra=_BODY,
    responses={415: {"description": "不支持的内容类型", **PROBLEM_CONTENT}},
    summary="部门推送（批量 upsert，按自然主键）",
)
async def push(
    request: Request, session: Session, principal: CurrentPrincipal, ledger: LedgerCode
) -> Response:
    """Records are flat objects: `source_event_id`, `effective_at`, optional `op` (upsert |
    death | moved_out | revoked), the ledger's natural key (person: `id_number`, organisation:
    `credit_code` …), optional `region_code` (to create a core record) or `parent_key` (an
    extension's parent), and item values by field code. Only items the pushing department owns
    are accepted (else 403, nothing written). Per-record results: applied / unchanged /
    superseded / already_applied / rejected with a reason."""
    cat = get_catalog()
    lg = ledger_or_404(cat, ledger)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    raws = await read_body(await request.body(), media)
    try:
        result = await apply_push(session, principal, lg, raws, cat)
    except PushRefused as refused:
        # Nothing was written before the check; the refusal itself is kept in the audit log.
        await append(
            session,
            actor=principal.actor,
            action="push_refused",
            path="push",
            ledger=lg.code,
            fields=[e.path.removeprefix("body.") for e in refused.errors],
            detail={
                "code": refused.code,
                "records": len(raws),
                "source": principal.department_code,
            },
        )
        return problem_response(refused, request)
    return JSON(result)


@router.get("/sources", response_model=SourceList, summary="各部门推送源的更新频率与新鲜度")
async def sources(session: Session, principal: CurrentPrincipal) -> JSON:
    """A source is stale when it has not pushed within its declared frequency × tolerance
    (ledgers/departments.yaml); `stale_since` is recorded for the alerts that will read it."""
    return JSON({"items": await freshness.refresh_staleness(session, get_catalog())})


@router.get("/changes", response_model=ChangePage, summary="部门推送带来的变更（本辖区）")
async def changes(
    session: Session,
    principal: CurrentPrincipal,
    ledger: Annotated[str, Query(description="台账代码", pattern=r"^[a-z][a-z0-9_]{0,40}$")],
    since: Annotated[int, Query(ge=0, le=2**63 - 1, description="上次返回的 next_since；0 为从头开始")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    source: Annotated[
        str | None, Query(description="只看某部门，如 mzj", pattern=r"^[a-z][a-z0-9_]{0,40}$")
    ] = None,
    region: Annotated[str | None, Query(description="只看某区划（12 位代码）", pattern=r"^\d{12}$")] = None,
) -> JSON:
    cat = get_catalog()
    ledger_or_404(cat, ledger)
    return JSON(
        await feed.changes(
            session,
            principal,
            cat,
            ledger=ledger,
            since=since,
            limit=limit,
            source=source,
            region=region,
        )
    )


__all__ = ["ALL_TYPES", "router"]
