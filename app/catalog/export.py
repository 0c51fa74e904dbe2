"""The catalogue in effect as one YAML document in the ledgers/*.yaml format (admitted items included).

`GET /api/v1/catalog/export` and `onetable catalog export` print it; load_catalog reads it back, so an
admitted item can be moved into ledgers/*.yaml by copying its lines.
"""

from __future__ import annotations

from typing import Any

import yaml

from app.catalog.model import Catalog, Department, Field, Ledger

_FIELD_DEFAULTS = {
    "required": False,
    "unique": False,
    "sensitivity": "internal",
    "mask": "none",
    "precision": 14,
    "scale": 2,
    "source": "township",
    "frequency": "on_change",
}


def _field(f: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"code": f.code, "label": f.label, "type": f.type.value}
    for key, default in _FIELD_DEFAULTS.items():
        value = getattr(f, key)
        value = getattr(value, "value", value)
        if value != default and not (key in ("precision", "scale") and f.type.value != "decimal"):
            out[key] = value
    for key in ("codelist", "ref", "max_length", "owner", "description"):
        if getattr(f, key) is not None:
            out[key] = getattr(f, key)
    v = f.validator
    if v is not None:
        parts = (("kind", v.kind), ("pattern", v.pattern), ("min", v.min), ("max", v.max))
        out["validator"] = (
            v.kind
            if v.kind in ("id_card", "uscc", "division_code", "phone", "parcel_code")
            else {k: x for k, x in parts if x is not None}
        )
    if f.derived_from:
        out["derived_from"] = list(f.derived_from)
    if f.aliases:
        out["aliases"] = list(f.aliases)
    return out


def _ledger(lg: Ledger) -> dict[str, Any]:
    out: dict[str, Any] = {"code": lg.code, "label": lg.label, "kind": lg.kind}
    if lg.parent:
        out |= {"parent": lg.parent, "cardinality": lg.cardinality}
    for key in ("natural_key", "owner", "description"):
        if getattr(lg, key) is not None:
            out[key] = getattr(lg, key)
    out["fields"] = [_field(f) for f in lg.fields]
    return out


def _department(d: Department) -> dict[str, Any]:
    out: dict[str, Any] = {"code": d.code, "name": d.name}
    if d.short:
        out["short"] = d.short
    if d.push_frequency:
        out["push"] = {"frequency": d.push_frequency} | (
            {"tolerance": d.push_tolerance} if d.push_tolerance != 2.0 else {}
        )
    return out


def as_data(cat: Catalog) -> dict[str, Any]:
    return {
        "departments": [_department(d) for d in cat.departments.values()],
        "codelists": [
            {
                "code": c.code,
                "label": c.label,
                **({"standard": c.standard} if c.standard else {}),
                "values": dict(c.values),
            }
            for c in cat.codelists.values()
        ],
        "ledgers": [_ledger(lg) for lg in cat.ledgers.values()],
        "relations": [
            {
                "code": r.code,
                "label": r.label,
                "from": r.source,
                "to": r.target,
                "forward": r.forward,
                "backward": r.backward,
                "forward_many": r.forward_many,
                "backward_many": r.backward_many,
                **({"attributes": [_field(a) for a in r.attributes]} if r.attributes else {}),
            }
            for r in cat.relations.values()
        ],
    }


def as_yaml(cat: Catalog, version: int | None = None) -> str:
    head = (
        f"# 一表通数据标准（生效目录） version {version if version is not None else '?'} stamp {cat.stamp}\n"
    )
    return head + yaml.safe_dump(as_data(cat), allow_unicode=True, sort_keys=False, width=120)
