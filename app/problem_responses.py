"""Every error an operation can answer is declared in the OpenAPI document, as problem+json.

The generic layers answer the same statuses on every operation (400 a bad cursor or unreadable body,
401 credentials, 403 grants, 404 not found or outside one's area, 413 body over its cap, 422
validation, 503 database unavailable / pool busy / statement or lock timeout with Retry-After), and
writes add 409 (version conflicts, duplicates) and 428 (If-Match). Rather than a
`responses=` dict repeated on ~50 routes, the document is completed once here, so clients and
schemathesis can rely on status codes and media types (FastAPI's own 422 is application/json).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string", "description": "给人看的中文标题"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "稳定的机器可读代码，如 record.not_found"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "code", "message"],
                "properties": {
                    "path": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# `responses=` content for a route that declares a problem status of its own (e.g. 429 on login).
PROBLEM_CONTENT: dict[str, Any] = {"content": {"application/problem+json": {"schema": PROBLEM_REF}}}

COMMON = {
    "400": "请求格式错误（如无效的分页游标、无法解析的请求体）",
    "401": "未登录或凭证无效",
    "403": "无权执行此操作",
    "404": "记录不存在或无权访问",
    "413": "请求内容过大",
    "422": "请求参数或提交的数据未通过校验",
    "503": "数据库暂时不可用、服务繁忙或查询超时（带 Retry-After，稍后重试）",
}
WRITES = {
    "409": "数据冲突（版本已变化、重复等）",
    "415": "不支持的内容类型",
    "428": "缺少 If-Match 版本条件",
}
_WRITE_METHODS = {"post", "put", "patch", "delete"}


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for ops in doc.get("paths", {}).values():
        for method, op in ops.items():
            if method not in _WRITE_METHODS and method != "get":
                continue
            responses = op.setdefault("responses", {})
            wanted = {**COMMON, **(WRITES if method in _WRITE_METHODS else {})}
            for status, description in wanted.items():
                given = responses.get(status, {})
                responses[status] = {
                    "description": given.get("description", description),
                    "content": {"application/problem+json": {"schema": PROBLEM_REF}},
                }
            for status, given in responses.items():  # e.g. 415, 429 declared by a route
                if status[0] in "45" and "application/json" in given.get("content", {}):
                    given["content"] = {"application/problem+json": {"schema": PROBLEM_REF}}
    schemas = doc["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
