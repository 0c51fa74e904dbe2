"""Proposals of new data items: checked, checked for duplicates by meaning, stored, decided.

A department proposes fields on an existing ledger or a new thematic extension; the platform admin
approves (apply.py changes the database and the catalogue version in the same transaction) or rejects
with a comment. A rejected proposal changes nothing but its own row.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access import audit
from app.auth.principal import Principal
from app.catalog.admission import apply, duplicates
from app.catalog.admission.models import CatalogProposal
from app.catalog.admission.schemas import ProposalIn
from app.catalog.loader import RESERVED, get_catalog
from app.catalog.model import Catalog
from app.errors import FieldError, Problem, invalid

# Masks that read text, and the one that reads dates; `full` and `none` fit any type.
_TEXT_MASKS = {"id_card", "phone", "name", "address", "certificate"}


def _owner_department(principal: Principal) -> str | None:
    return principal.department_code if principal.org_unit_kind == "department" else None


def check(cat: Catalog, principal: Principal, body: ProposalIn) -> list[FieldError]:
    """Everything wrong with a proposal against the catalogue in effect, each at its body path."""
    errors: list[FieldError] = []
    own = _owner_department(principal)
    if not principal.is_platform_admin and own is None:
        raise Problem(403, "catalog.proposer_not_department", "只有部门或平台管理员可以申请新增数据项")
    existing: set[str] = set()
    if body.kind == "fields":
        lg = cat.ledger(body.ledger)
        if lg is None:
            errors.append(FieldError("body.ledger", "ledger.not_found", "台账不存在"))
        else:
            existing = {f.code for f in lg.fields}
            existing |= {
                rel.forward if d == "forward" else rel.backward for rel, d in cat.relations_of(lg.code)
            }
            existing |= {e.code for e in cat.extensions_of(lg.code)} | ({lg.parent} if lg.parent else set())
        if body.extension is not None:
            errors.append(
                FieldError("body.extension", "catalog.extension_unexpected", "增加数据项时不填写专题台账信息")
            )
    else:
        if body.ledger in cat.ledgers or body.ledger in RESERVED:
            errors.append(FieldError("body.ledger", "catalog.ledger_taken", "台账代码已被使用"))
        if body.extension is None:
            errors.append(
                FieldError("body.extension", "field.required", "新建专题台账须填写名称和所扩展的台账")
            )
        else:
            parent = cat.ledger(body.extension.parent)
            if parent is None or parent.kind != "core":
                errors.append(
                    FieldError("body.extension.parent", "catalog.parent_not_core", "所扩展的台账须为基础台账")
                )
            else:
                taken = {
                    rel.forward if d == "forward" else rel.backward
                    for rel, d in cat.relations_of(parent.code)
                }
                taken |= {f.code for f in parent.fields}
                if body.ledger in taken:
                    errors.append(
                        FieldError(
                            "body.ledger", "catalog.ledger_taken", "代码与所扩展台账的数据项或关联重名"
                        )
                    )
    new_lists: dict[str, int] = {}
    for i, cl in enumerate(body.codelists):
        if cl.code in cat.codelists or cl.code in new_lists:
            errors.append(
                FieldError(f"body.codelists.{i}.code", "catalog.codelist_taken", "代码表代码已存在")
            )
        new_lists[cl.code] = i
    used_lists: set[str] = set()
    seen: set[str] = set()
    for i, f in enumerate(body.fields):
        at = f"body.fields.{i}"
        if f.code in RESERVED:
            errors.append(FieldError(f"{at}.code", "catalog.code_reserved", "该代码为系统保留字段名"))
        elif f.code in existing:
            errors.append(FieldError(f"{at}.code", "catalog.code_taken", "台账中已有同名数据项或关联"))
        elif f.code in seen:
            errors.append(FieldError(f"{at}.code", "catalog.code_taken", "申请中数据项代码重复"))
        seen.add(f.code)
        if f.type == "code":
            if f.codelist is None:
                errors.append(FieldError(f"{at}.codelist", "field.required", "代码型数据项须指定代码表"))
            elif f.codelist not in cat.codelists and f.codelist not in new_lists:
                errors.append(
                    FieldError(
                        f"{at}.codelist",
                        "catalog.codelist_unknown",
                        "代码表不存在：请选用已有代码表，或在申请中新增",
                    )
                )
            used_lists.add(f.codelist or "")
        elif f.codelist is not None:
            errors.append(
                FieldError(f"{at}.codelist", "catalog.codelist_unexpected", "只有代码型数据项可以指定代码表")
            )
        if f.type == "decimal" and f.scale > f.precision:
            errors.append(FieldError(f"{at}.scale", "catalog.scale_too_large", "小数位数不能大于总位数"))
        if f.sensitivity == "sensitive" and f.mask == "none":
            errors.append(FieldError(f"{at}.mask", "catalog.mask_required", "敏感数据项须指定脱敏规则"))
        if (f.mask in _TEXT_MASKS and f.type != "text") or (
            f.mask == "year" and f.type not in ("date", "datetime")
        ):
            errors.append(FieldError(f"{at}.mask", "catalog.mask_type", "脱敏规则与数据类型不匹配"))
        owner = f.owner or own
        if owner is None:
            errors.append(FieldError(f"{at}.owner", "field.required", "须指定数据所有部门"))
        elif owner not in cat.departments:
            errors.append(FieldError(f"{at}.owner", "catalog.department_unknown", "部门不在数据标准中"))
        elif own is not None and owner != own and not principal.is_platform_admin:
            errors.append(FieldError(f"{at}.owner", "catalog.owner_not_own", "只能为本部门申请数据项"))
        if (
            f.source
            and f.source.startswith("department:")
            and f.source.split(":", 1)[1] not in cat.departments
        ):
            errors.append(FieldError(f"{at}.source", "catalog.department_unknown", "部门不在数据标准中"))
    for code, i in new_lists.items():
        if code not in used_lists:
            errors.append(
                FieldError(
                    f"body.codelists.{i}.code", "catalog.codelist_unused", "新增的代码表没有数据项使用"
                )
            )
    return errors


def _field_spec(f, owner: str | None) -> dict:
    """A field as ledgers/*.yaml would write it (what the catalogue and the YAML export read)."""
    spec = {
        "code": f.code,
        "label": f.label,
        "type": f.type,
        "sensitivity": f.sensitivity,
        "mask": f.mask,
        "owner": owner,
        "frequency": f.frequency,
        "source": f.source or f"department:{owner}",
    }
    if f.type == "code":
        spec["codelist"] = f.codelist
    if f.type == "text" and f.max_length:
        spec["max_length"] = f.max_length
    if f.type == "decimal":
        spec |= {"precision": f.precision, "scale": f.scale}
    if f.description:
        spec["description"] = f.description
    return spec


def find_candidates(cat: Catalog, body: ProposalIn) -> list[dict]:
    out = []
    for i, f in enumerate(body.fields):
        found = duplicates.candidates(cat, f.label)
        if found:
            out.append({"path": f"body.fields.{i}.label", "label": f.label, "candidates": found})
    return out


async def propose(session: AsyncSession, principal: Principal, body: ProposalIn) -> CatalogProposal:
    cat = get_catalog()
    errors = check(cat, principal, body)
    if errors:
        raise invalid(errors, "数据项申请未通过校验")
    found = find_candidates(cat, body)
    if found and not body.not_duplicate_reason:
        raise Problem(
            409,
            "catalog.possible_duplicate",
            "数据目录中可能已有这些数据项",
            detail="请核对疑似重复的数据项；确认不是重复时，填写 not_duplicate_reason 说明理由后重新提交",
            errors=[
                FieldError(
                    c["path"],
                    "catalog.possible_duplicate",
                    "疑似已有："
                    + "、".join(f"{m['ledger_label']}.{m['label']}（{m['score']}）" for m in c["candidates"]),
                )
                for c in found
            ],
            extra={"candidates": found},
        )
    own = _owner_department(principal)
    ext = None
    if body.extension is not None:
        ext = body.extension.model_dump(exclude_none=True) | {"owner": body.fields[0].owner or own}
    p = CatalogProposal(
        kind=body.kind,
        ledger=body.ledger,
        extension=ext,
        fields=[_field_spec(f, f.owner or own) for f in body.fields],
        codelists=[cl.model_dump(exclude_none=True) for cl in body.codelists],
        reason=body.reason,
        candidates=found,
        not_duplicate_reason=body.not_duplicate_reason if found else None,
        department_code=own,
        state="proposed",
        proposed_by=principal.actor,
    )
    session.add(p)
    await session.flush()
    await audit.append(
        session,
        actor=principal.actor,
        action="catalog.propose",
        path="rest",
        ledger=body.ledger,
        fields=[f.code for f in body.fields],
        detail={"proposal_id": p.id},
    )
    return p


async def get(
    session: AsyncSession, principal: Principal, proposal_id: int, *, lock: bool = False
) -> CatalogProposal:
    stmt = select(CatalogProposal).where(CatalogProposal.id == proposal_id)
    p = await session.scalar(stmt.with_for_update() if lock else stmt)
    # Departments see their own proposals; admins see all. Same 404 for absent and not yours.
    if p is None or not (principal.is_platform_admin or p.department_code == _owner_department(principal)):
        raise Problem(404, "catalog.proposal_not_found", "数据项申请不存在或无权访问")
    return p


async def listing(session: AsyncSession, principal: Principal, state: str | None) -> list[CatalogProposal]:
    stmt = select(CatalogProposal).order_by(CatalogProposal.id.desc()).limit(500)
    if state:
        stmt = stmt.where(CatalogProposal.state == state)
    if not principal.is_platform_admin:
        stmt = stmt.where(CatalogProposal.department_code == (_owner_department(principal) or "-"))
    return list((await session.scalars(stmt)).all())


def _require_admin(principal: Principal) -> None:
    if not principal.is_platform_admin:
        raise Problem(403, "auth.role_required", "只有平台管理员可以审批数据项准入")


def _undecided(p: CatalogProposal) -> None:
    if p.state != "proposed":
        raise Problem(409, "catalog.proposal_decided", "该申请已审批")


async def approve(
    session: AsyncSession, principal: Principal, proposal_id: int, comment: str | None
) -> CatalogProposal:
    _require_admin(principal)
    p = await get(session, principal, proposal_id, lock=True)
    _undecided(p)
    version = await apply.admit(session, principal, p)
    p.state, p.applied_version = "approved", version
    p.decided_by, p.decided_at, p.comment = principal.actor, datetime.now(UTC), comment
    await session.flush()
    await audit.append(
        session,
        actor=principal.actor,
        action="catalog.approve",
        path="rest",
        ledger=p.ledger,
        fields=[f["code"] for f in p.fields],
        detail={"proposal_id": p.id, "version": version},
    )
    return p


async def reject(
    session: AsyncSession, principal: Principal, proposal_id: int, comment: str | None
) -> CatalogProposal:
    _require_admin(principal)
    if not comment or not comment.strip():
        raise invalid([FieldError("body.comment", "field.required", "不予准入须填写意见")])
    p = await get(session, principal, proposal_id, lock=True)
    _undecided(p)
    p.state, p.decided_by, p.decided_at, p.comment = "rejected", principal.actor, datetime.now(UTC), comment
    await session.flush()
    await audit.append(
        session,
        actor=principal.actor,
        action="catalog.reject",
        path="rest",
        ledger=p.ledger,
        detail={"proposal_id": p.id},
    )
    return p
