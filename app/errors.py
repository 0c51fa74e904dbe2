"""RFC 9457 problem details: one exception type, stable codes, field paths, Chinese titles.

A problem never echoes a value the caller sent or may not read: only codes, paths and fixed text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.jsonresponse import ProblemJSON

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://onetable.example/problems/"


@dataclass
class FieldError:
    path: str  # JSON-pointer-like dotted path, e.g. "body.id_number" or "query.order"
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message}


@dataclass
class Problem(Exception):
    status: int
    code: str  # stable, machine-readable: "record.not_found", "validation.failed" ...
    title: str  # Chinese, for people
    detail: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] | None = None

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": PROBLEM_TYPE + self.code,
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            out["detail"] = self.detail
        if instance:
            out["instance"] = instance
        if self.errors:
            out["errors"] = [e.as_dict() for e in self.errors]
        out.update(self.extra)
        return out


def not_found(what: str = "记录") -> Problem:
    # Same answer for "absent" and "outside your area": existence is not leaked.
    return Problem(404, "record.not_found", f"{what}不存在或无权访问")


def forbidden(code: str, title: str, path: str | None = None) -> Problem:
    errs = [FieldError(path, code, title)] if path else []
    return Problem(403, code, title, errors=errs)


def invalid(errors: list[FieldError], title: str = "提交的数据未通过校验") -> Problem:
    return Problem(422, "validation.failed", title, errors=errors)


def problem_response(p: Problem, request: Request | None = None) -> ProblemJSON:
    return ProblemJSON(
        p.body(str(request.url.path) if request else None), status_code=p.status, headers=p.headers
    )


_STATUS_CODES = {
    400: ("request.bad", "请求格式错误"),
    401: ("auth.required", "需要登录"),
    403: ("access.forbidden", "无权执行此操作"),
    404: ("route.not_found", "请求的地址不存在"),
    405: ("route.method_not_allowed", "不支持该请求方法"),
    409: ("conflict", "数据冲突"),
    413: ("request.too_large", "请求内容过大"),
    415: ("request.unsupported_media_type", "不支持的内容类型"),
}


def http_problem(status: int) -> Problem:
    """The problem for a bare HTTP status raised by a framework layer (no details of ours to add)."""
    if status == 400:
        return Problem(400, "request.bad", "请求格式错误")
    code, title = _STATUS_CODES.get(status, ("http.error", "请求失败"))
    return Problem(status, code, title)


def _loc_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def install_problem_handlers(app: FastAPI) -> None:
    import psycopg
    from sqlalchemy.exc import PendingRollbackError, TimeoutError as PoolTimeout

    from app.db.faults import problem_for

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        # pydantic messages can quote the input; we keep only the location and the error type.
        errors = [
            FieldError(
                _loc_path(e.get("loc", ())), f"schema.{e.get('type', 'invalid')}", _zh_schema_message(e)
            )
            for e in exc.errors()
        ]
        return problem_response(invalid(errors, "请求参数未通过校验"), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code, title = _STATUS_CODES.get(exc.status_code, ("http.error", "请求失败"))
        return problem_response(
            Problem(exc.status_code, code, title, headers=getattr(exc, "headers", None)), request
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError):
        # Down, busy or timed out (app/db/faults.py): 503 with Retry-After, the outage logged once.
        fault = problem_for(exc)
        if fault is not None:
            return problem_response(fault, request)
        # Inputs are bounded before they reach PostgreSQL (app/inputs.py, app/params.py, catalogue
        # coercion); a value that still gets past them and that the database refuses as data (out
        # of range, too long, a character it can't store) is the caller's 422, not a 500.
        if _is_data_error(exc):
            log.warning(
                "database refused a value on %s %s: %s",
                request.method,
                request.url.path,
                type(exc.orig).__name__,
            )
            return problem_response(
                invalid(
                    [FieldError("body", "value.unstorable", "数据超出允许范围或含有无法保存的字符")],
                    "提交的数据未通过校验",
                ),
                request,
            )
        return await _unexpected(request, exc)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(PendingRollbackError)
    @app.exception_handler(psycopg.Error)
    async def _database_fault(request: Request, exc: Exception):
        fault = problem_for(exc)
        return problem_response(fault, request) if fault is not None else await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem(500, "internal", "服务内部错误，请稍后重试"), request)


# SQLSTATEs of values refused as data: 22001 string too long, 22003 numeric out of range, 22008 datetime
# out of range, 22021 / 22P05 character not in the encoding.
_DATA_STATES = {"22001", "22003", "22008", "22021", "22P05"}


def _is_data_error(exc: DBAPIError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _DATA_STATES:
        return True
    # psycopg refuses NUL and unencodable text before sending: a DataError without a SQLSTATE.
    return type(orig).__name__ == "DataError" and getattr(orig, "sqlstate", None) is None


def _zh_schema_message(e: dict) -> str:
    t = e.get("type", "")
    if t == "missing":
        return "缺少必填项"
    if t.endswith(("_type", "_parsing")):
        return "类型不正确"
    if "too_long" in t or "too_short" in t:
        return "长度不符合要求"
    if t in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "超出允许范围"
    if t == "extra_forbidden":
        return "不允许的字段"
    return "格式不正确"
