"""/api/v1/dedupe: the queue of probable duplicates, accept (merge) / reject, undo a merge."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from app.auth.deps import CurrentPrincipal
from app.db.deps import Session
from app.dedupe import merge, review

router = APIRouter(prefix="/dedupe", tags=["疑似重复与合并"])

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    survivor_id: int | None = Field(
        None,
        ge=1,
        le=2**63 - 1,
        description="保留哪条记录（两条台账记录之间的候选）；默认 record_id",
    )


@router.get("/candidates", summary="疑似重复候选（本辖区，按权限脱敏）")
async def list_candidates(
    session: Session,
    principal: CurrentPrincipal,
    ledger: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{0,40}$", description="台账代码")] = "person",
    status: Annotated[Literal["open", "merged", "rejected"], Query(description="状态")] = "open",
    batch_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="导入批次")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="上一页返回的 next_after")] = None,
) -> dict[str, Any]:
    return await review.list_candidates(
        session, principal, ledger, status=status, batch_id=batch_id, limit=limit, after=after
    )


@router.post("/candidates/{candidate_id}/accept", summary="确认重复并合并")
async def accept(
    session: Session,
    principal: CurrentPrincipal,
    candidate_id: Id,
    body: Annotated[AcceptBody | None, Body()] = None,
) -> dict[str, Any]:
    return await merge.accept(session, principal, candidate_id, body.survivor_id if body else None)


@router.post("/candidates/{candidate_id}/reject", summary="确认不是同一人（驳回候选）")
async def reject(session: Session, principal: CurrentPrincipal, candidate_id: Id) -> dict[str, Any]:
    return await merge.reject(session, principal, candidate_id)


@router.post("/merges/{merge_id}/undo", summary="撤销合并")
async def undo(session: Session, principal: CurrentPrincipal, merge_id: Id) -> dict[str, Any]:
    return await merge.undo(session, principal, merge_id)
