"""/api/v1/catalog: the data standard as the service understands it (ledgers, fields, code lists)."""

from typing import Any

from fastapi import APIRouter

from app.auth.deps import CurrentPrincipal
from app.catalog.loader import get_catalog
from app.catalog.model import Field, Ledger
from app.errors import Problem

router = APIRouter(prefix="/catalog", tags=["数据标准"])


def _field(f: Field) -> dict[str, Any]:
    return {
        "code": f.code,
        "label": f.label,
        "type": f.type.value,
        "required": f.required,
        "unique": f.unique,
        "sensitivity": f.sensitivity.value,
        "mask": f.mask.value,
        "validator": f.validator.kind if f.validator else None,
        "codelist": f.codelist,
        "ref": f.ref,
        "source": f.source,
        "frequency": f.frequency,
        "owner": f.owner,
        "derived_from": list(f.derived_from),  # never more readable than these (docs/access.md)
    }


def _ledger(lg: Ledger, full: bool) -> dict[str, Any]:
    cat = get_catalog()
    out: dict[str, Any] = {
        "code": lg.code,
        "label": lg.label,
        "kind": lg.kind,
        "parent": lg.parent,
        "natural_key": lg.natural_key,
        "owner": lg.owner,
        "field_count": len(lg.fields),
    }
    if full:
        out["fields"] = [_field(f) for f in lg.fields]
        out["relations"] = [
            {
                "name": rel.forward if d == "forward" else rel.backward,
                "relation": rel.code,
                "label": rel.label,
                "ledger": rel.target if d == "forward" else rel.source,
                "many": rel.forward_many if d == "forward" else rel.backward_many,
            }
            for rel, d in cat.relations_of(lg.code)
        ]
        out["extensions"] = [e.code for e in cat.extensions_of(lg.code)]
    return out


@router.get("/ledgers", summary="台账目录")
async def list_ledgers(_: CurrentPrincipal) -> list[dict[str, Any]]:
    return [_ledger(lg, False) for lg in get_catalog().ledgers.values()]


@router.get("/ledgers/{code}", summary="台账的数据项、关联与专题台账")
async def get_ledger(code: str, _: CurrentPrincipal) -> dict[str, Any]:
    lg = get_catalog().ledger(code)
    if lg is None:
        raise Problem(404, "ledger.not_found", "台账不存在")
    return _ledger(lg, True)


@router.get("/codelists", summary="代码表")
async def list_codelists(_: CurrentPrincipal) -> list[dict[str, Any]]:
    return [
        {"code": c.code, "label": c.label, "standard": c.standard, "values": c.values}
        for c in get_catalog().codelists.values()
    ]
