"""Ledger record schemas in the OpenAPI document, from the catalogue in effect.

Records are open objects on the wire (their fields come from the catalogue, and each reader sees only
the fields granted to it), so the operations answer RecordOut; the document adds one
`LedgerRecord.<ledger>` schema per ledger listing every data item with its Chinese label, so clients see
admitted items as soon as the catalogue has them. The document is built once per catalogue version, and
/openapi.json is served for the version the request's transaction sees.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI, Request
from starlette.routing import Route

from app.catalog.loader import get_catalog
from app.catalog.model import Catalog, Field, FieldType
from app.db.deps import Session
from app.jsonresponse import JSON

_SENSITIVITY = {"public": "公开", "internal": "内部", "sensitive": "敏感", "secret": "涉密"}


def _property(f: Field, cat: Catalog) -> dict[str, Any]:
    match f.type:
        case FieldType.integer | FieldType.reference:
            p: dict[str, Any] = {"type": "integer"}
        case FieldType.decimal:
            p = {"type": "number"}
        case FieldType.boolean:
            p = {"type": "boolean"}
        case FieldType.date:
            p = {"type": "string", "format": "date"}
        case FieldType.datetime:
            p = {"type": "string", "format": "date-time"}
        case _:
            p = {"type": "string"}
            if f.max_length:
                p["maxLength"] = f.max_length
    # Masked values are text (****, 500118********1234) whatever the type: say so rather than lie.
    masked = f.sensitivity.value in ("sensitive", "secret") or f.mask.value != "none"
    p = (
        {"anyOf": [p, {"type": "string", "description": "脱敏后的值"}, {"type": "null"}]}
        if masked
        else {"anyOf": [p, {"type": "null"}]}
    )
    note = [f"敏感级别：{_SENSITIVITY[f.sensitivity.value]}"]
    if f.codelist:
        cl = cat.codelists.get(f.codelist)
        if cl:
            note.append(
                "代码表 " + cl.code + "：" + "，".join(f"{k}={v}" for k, v in cl.values.items())[:300]
            )
    if f.owner:
        dept = cat.departments.get(f.owner)
        note.append(f"数据所有部门：{dept.name if dept else f.owner}")
    return {"title": f.label, "description": "；".join(note), **p}


def record_schemas(cat: Catalog) -> dict[str, dict[str, Any]]:
    out = {}
    for lg in cat.ledgers.values():
        props = {f.code: _property(f, cat) for f in lg.fields}
        out[f"LedgerRecord.{lg.code}"] = {
            "title": f"{lg.label}台账记录",
            "type": "object",
            "description": "读者只看到被授权的数据项（脱敏项为脱敏后的值）；另有 RecordOut 的基础列",
            "allOf": [{"$ref": "#/components/schemas/RecordOut"}, {"type": "object", "properties": props}],
        }
    return out


def install(app: FastAPI) -> None:
    generate = app.openapi  # the catalogue-free document (problem_responses completes and caches it)

    def openapi() -> dict[str, Any]:
        cat = get_catalog()
        key = ("openapi", id(app))
        doc = cat.built.get(key)
        if doc is None:
            doc = copy.deepcopy(generate())
            doc.setdefault("components", {}).setdefault("schemas", {}).update(record_schemas(cat))
            cat.built[key] = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    if app.openapi_url:
        # FastAPI's own route reads no database; this one sees the request's catalogue version.
        app.router.routes[:] = [
            r for r in app.router.routes if not (isinstance(r, Route) and r.path == app.openapi_url)
        ]

        @app.get(app.openapi_url, include_in_schema=False)
        async def openapi_json(request: Request, session: Session) -> JSON:
            doc = app.openapi()
            root_path = request.scope.get("root_path", "").rstrip("/")
            servers = doc.get("servers", [])
            if root_path and app.root_path_in_servers and root_path not in [s.get("url") for s in servers]:
                doc = {**doc, "servers": [{"url": root_path}, *servers]}  # as FastAPI's route does
            return JSON(doc)
