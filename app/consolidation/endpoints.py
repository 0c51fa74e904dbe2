"""/api/v1/legacy-forms: the register of legacy report forms and their consolidation (Layer A)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from app.auth.deps import CurrentPrincipal
from app.consolidation import register
from app.consolidation.schemas import (
    Breakdown,
    FormIn,
    FormList,
    FormOut,
    GoLiveIn,
    ProposalIn,
    ProposalList,
)
from app.db.deps import Session
from app.jsonresponse import JSON

router = APIRouter(prefix="/legacy-forms", tags=["报表整合"])


def _out(f: object) -> dict[str, Any]:
    return FormOut.model_validate(f).model_dump(mode="json")


@router.post("", status_code=201, response_model=FormOut, summary="登记一张下发给镇街的常态报表")
async def create(session: Session, principal: CurrentPrincipal, body: FormIn) -> JSON:
    return JSON(_out(await register.register(session, principal, body)), status_code=201)


@router.get("", response_model=FormList, summary="报表清单")
async def list_forms(
    session: Session,
    principal: CurrentPrincipal,
    state: Annotated[Literal["active", "retired"] | None, Query(description="状态")] = None,
    department: Annotated[
        str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,40}$", description="制发部门")
    ] = None,
) -> JSON:
    return JSON(
        {"items": [_out(f) for f in await register.list_forms(session, state=state, department=department)]}
    )


@router.post(
    "/proposals",
    response_model=ProposalList,
    summary="去重合并方案：跨报表匹配表头，并入台账或专题台账",
)
async def proposals(session: Session, principal: CurrentPrincipal, body: ProposalIn) -> JSON:
    """Per subject: merged items with the catalogue item each maps to, its source (platform /
    department /
    township) and the township upkeep that remains; a pull-only template draft for go-live."""
    return JSON({"items": await register.proposals(session, principal, body.form_ids)})


@router.post("/go-live", response_model=FormList, summary="上线：报表映射到模板并停用")
async def go_live(session: Session, principal: CurrentPrincipal, body: GoLiveIn) -> JSON:
    rows, pull_only = await register.go_live(session, principal, body.form_ids, body.template_id, body.ledger)
    return JSON({"items": [_out(f) for f in rows], "pull_only": pull_only})


@router.get("/breakdown", response_model=Breakdown, summary="台账数据项来源构成与镇街维护占比")
async def breakdown(
    session: Session,
    principal: CurrentPrincipal,
    ledger: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{0,40}$", description="台账或专题台账代码")],
) -> JSON:
    return JSON(await register.breakdown(session, ledger))
