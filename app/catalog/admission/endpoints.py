"""/api/v1/catalog/proposals (数据项准入), /api/v1/catalog/version and /api/v1/catalog/export."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import Response
from sqlalchemy import select

from app.auth.deps import CurrentPrincipal
from app.catalog.admission import duplicates, proposals, schemas as S
from app.catalog.admission.models import CatalogProposal, CatalogVersion
from app.catalog.export import as_yaml
from app.catalog.loader import get_catalog
from app.db.deps import Session
from app.problem_responses import PROBLEM_CONTENT

router = APIRouter(prefix="/catalog", tags=["数据标准"])
Id = Annotated[int, Path(ge=1, le=2**63 - 1, description="申请编号")]
HOUSE_SAFETY = {
    "kind": "fields",
    "ledger": "house",
    "fields": [
        {
            "code": "safety_grade",
            "label": "房屋安全等级",
            "type": "code",
            "codelist": "house_safety_grade",
            "sensitivity": "internal",
            "frequency": "yearly",
        }
    ],
    "codelists": [
        {
            "code": "house_safety_grade",
            "label": "房屋安全等级",
            "standard": "JGJ 125-2016",
            "values": {"A": "A级", "B": "B级", "C": "C级", "D": "D级"},
        }
    ],
    "reason": "低保家庭住房安全情况季报需要房屋安全鉴定等级",
    "not_duplicate_reason": "是否危房只分是否，安全等级为 A–D 四级鉴定结论",
}


def _problems(*statuses: int) -> dict:
    return {s: {"description": "见 problem+json", **PROBLEM_CONTENT} for s in statuses}


def _out(p: CatalogProposal) -> dict:
    return S.ProposalOut.model_validate(p, from_attributes=True).model_dump(mode="json")


@router.post(
    "/proposals",
    status_code=201,
    response_model=S.ProposalOut,
    responses=_problems(403, 409, 422),
    summary="申请新增数据项或专题台账（数据项准入）",
)
async def propose(
    session: Session,
    principal: CurrentPrincipal,
    body: Annotated[S.ProposalIn, Body(examples=[HOUSE_SAFETY])],
) -> dict:
    """Answers 409 `catalog.possible_duplicate` with the candidates when the catalogue may already hold an
    item of the same meaning; confirm with `not_duplicate_reason` to go on."""
    return _out(await proposals.propose(session, principal, body))


@router.post("/proposals/check", response_model=S.CheckOut, summary="查重：数据目录中是否已有同义数据项")
async def check(principal: CurrentPrincipal, session: Session, body: S.CheckIn) -> dict:
    cat = get_catalog()
    return {
        "items": [{"label": label, "candidates": duplicates.candidates(cat, label)} for label in body.labels]
    }


@router.get("/proposals", response_model=S.ProposalList, summary="数据项准入申请列表")
async def list_proposals(
    session: Session,
    principal: CurrentPrincipal,
    state: Annotated[Literal["proposed", "approved", "rejected"] | None, Query(description="状态")] = None,
) -> dict:
    return {"items": [_out(p) for p in await proposals.listing(session, principal, state)]}


@router.get("/proposals/{proposal_id}", response_model=S.ProposalOut, summary="读取数据项准入申请")
async def get_proposal(session: Session, principal: CurrentPrincipal, proposal_id: Id) -> dict:
    return _out(await proposals.get(session, principal, proposal_id))


@router.post(
    "/proposals/{proposal_id}/approve",
    response_model=S.ProposalOut,
    responses=_problems(403, 409),
    summary="准入：在线增加数据项（平台管理员）",
)
async def approve(session: Session, principal: CurrentPrincipal, proposal_id: Id, body: S.DecisionIn) -> dict:
    return _out(await proposals.approve(session, principal, proposal_id, body.comment))


@router.post(
    "/proposals/{proposal_id}/reject",
    response_model=S.ProposalOut,
    responses=_problems(403, 409),
    summary="不予准入（平台管理员，须填写意见）",
)
async def reject(session: Session, principal: CurrentPrincipal, proposal_id: Id, body: S.DecisionIn) -> dict:
    return _out(await proposals.reject(session, principal, proposal_id, body.comment))


async def _version(session) -> CatalogVersion | None:
    return await session.scalar(select(CatalogVersion).order_by(CatalogVersion.version.desc()).limit(1))


@router.get("/version", response_model=S.VersionOut, summary="当前数据目录版本")
async def version(session: Session, _: CurrentPrincipal) -> dict:
    v = await _version(session)
    return {"version": v.version if v else 1, "stamp": get_catalog().stamp}


@router.get(
    "/export",
    response_class=Response,
    summary="导出生效的数据目录（YAML，含已准入数据项）",
    responses={
        200: {
            "content": {
                "application/yaml": {
                    "schema": {
                        "type": "object",
                        "required": ["departments", "codelists", "ledgers", "relations"],
                        "description": "ledgers/*.yaml 格式（schemas/catalog.schema.json）",
                    }
                }
            },
            "description": "生效的数据目录",
        }
    },
)
async def export(session: Session, _: CurrentPrincipal) -> Response:
    v = await _version(session)
    return Response(
        as_yaml(get_catalog(), v.version if v else 1), media_type="application/yaml; charset=utf-8"
    )
