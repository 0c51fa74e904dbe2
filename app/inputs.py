"""Raw request input, bounded and sane before any endpoint, parser or database sees it (ASGI middleware).

- Size: a body over its cap is refused with 413 problem+json — at once when Content-Length says so,
  else as soon as the streamed bytes pass the cap. Caps (settings): `max_body_bytes` for JSON and
  forms, `max_upload_bytes` for multipart uploads (XLSX), `graphql_max_body_bytes` for /graphql.
- Text PostgreSQL can't store: a NUL character in the path, the query string, a JSON body or a form
  field is a 422 naming where it is (never echoing it); so is a query parameter that is not UTF-8
  once percent-decoded (/graphql: 400 request.invalid_utf8).
- JSON is read strictly (orjson): lone surrogates, NaN, Infinity, numbers that overflow a double
  (1e400) and invalid UTF-8 are refused here, where the standard library would let them through to
  a decimal or a text column and fail there with a 500. REST answers 422; /graphql answers 400, as
  GraphQL over HTTP does for a body it can't read.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote_to_bytes

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import FieldError, Problem, invalid, problem_response

GRAPHQL_PATH = "/graphql"
IMPORTS_PATH = "/api/v1/imports"
_JSON_TYPES = ("application/json", "application/problem+json", "application/merge-patch+json")
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
_NUL_MESSAGE = "不能包含空字符（\\u0000）"


def too_large(cap: int) -> Problem:
    return Problem(
        413,
        "request.too_large",
        "请求内容过大",
        detail=f"请求体不得超过 {cap} 字节",
        extra={"max_bytes": cap},
    )


class _TooLarge(Exception):
    pass


class InputGuard:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    def cap_for(self, path: str, media_type: str) -> int:
        if path == GRAPHQL_PATH or path.startswith(GRAPHQL_PATH + "/"):
            return self.settings.graphql_max_body_bytes
        if media_type == _MULTIPART:
            if path.startswith(IMPORTS_PATH):
                return self.settings.max_import_bytes
            return self.settings.max_upload_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        is_graphql = path == GRAPHQL_PATH or path.startswith(GRAPHQL_PATH + "/")
        problem = _check_url(path, scope.get("query_string", b""), graphql=is_graphql)
        if problem is not None:
            await problem_response(problem)(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        media_type = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
        cap = self.cap_for(path, media_type)
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await problem_response(too_large(cap))(scope, receive, send)
            return

        if media_type in _JSON_TYPES or media_type == _FORM or (is_graphql and scope["method"] == "POST"):
            # Small bodies the app parses whole anyway: read them here (bounded), check, replay.
            try:
                body = await _read(receive, cap)
            except _TooLarge:
                await problem_response(too_large(cap))(scope, receive, send)
                return
            if body:
                problem = _check_form(body) if media_type == _FORM else _check_json(body, graphql=is_graphql)
                if problem is not None:
                    await problem_response(problem)(scope, receive, send)
                    return
            await self.app(scope, _replay(body, receive), send)
            return
        await self.app(scope, _counting(receive, cap), send)


async def _read(receive: Receive, cap: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # client gone: let the app see the disconnect
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would

    return replay


def _counting(receive: Receive, cap: int) -> Receive:
    """Streamed bodies (uploads): refuse once past the cap. An HTTPException raised while the app
    reads the body reaches the app's problem handler (FastAPI re-raises it from body parsing)."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > cap:
                raise HTTPException(413)
        return message

    return counted


def _nul(path: str) -> Problem:
    return invalid([FieldError(path, "text.nul", _NUL_MESSAGE)], "请求参数未通过校验")


def _check_url(path: str, query_string: bytes, *, graphql: bool = False) -> Problem | None:
    if "\x00" in path:
        return _nul("path")
    bad = _bad_utf8(query_string)
    if bad is not None:
        # Decoded leniently, it would reach a filter or a GraphQL document as U+FFFD.
        if graphql:
            return Problem(
                400,
                "request.invalid_utf8",
                "请求参数不是有效的 UTF-8",
                detail="查询字符串经百分号解码后须为 UTF-8 文本",
            )
        return invalid([FieldError(bad, "text.invalid_utf8", "须为有效的 UTF-8 文本")], "请求参数未通过校验")
    if graphql and (b"variables=" in query_string or b"extensions=" in query_string):
        # GET /graphql carries JSON in the query string: read as strictly as a POST body.
        for name, value in parse_qsl(query_string.decode("utf-8"), keep_blank_values=True):
            if name in ("variables", "extensions") and value:
                problem = _check_json(value.encode("utf-8", "surrogatepass"), graphql=True)
                if problem is not None:
                    return problem
    if b"%00" in query_string or b"\x00" in query_string:
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return _nul("query" if "\x00" in name else f"query.{name}")
        return _nul("query")
    return None


def _bad_utf8(query_string: bytes) -> str | None:
    """The path (query / query.<name>) of the first parameter that is not UTF-8 once percent-decoded."""
    if not any(b >= 0x80 for b in query_string) and b"%" not in query_string:
        return None
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        try:
            text_name = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return "query"
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return f"query.{text_name}" if text_name and "\x00" not in text_name else "query"
    return None


def _check_form(body: bytes) -> Problem | None:
    if b"%00" not in body and b"\x00" not in body:
        return None
    for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return _nul("body" if "\x00" in name else f"body.{name}")
    return _nul("body")


def _check_json(body: bytes, *, graphql: bool) -> Problem | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        if not graphql and not _lenient_json(body):
            return None  # not JSON for anyone: the endpoint answers it as it always has
        if graphql:
            return Problem(
                400,
                "request.json_invalid",
                "请求体不是有效的 JSON",
                detail='请求体应为 UTF-8 编码的 JSON 对象：{"query": ..., "variables": {...}}',
            )
        return invalid(
            [
                FieldError(
                    "body",
                    "schema.json_invalid",
                    "请求体不是有效的 JSON：须为 UTF-8，不含孤立代理字符，数字须为有限值",
                )
            ],
            "请求参数未通过校验",
        )
    where = _find_nul(data)
    return None if where is None else _nul(where)


def _lenient_json(body: bytes) -> bool:
    """Whether the standard library (what FastAPI parses with) would accept what orjson refused."""
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return False
    return True


def _find_nul(data: object) -> str | None:
    """The body path of the first string (value or key) holding a NUL, e.g. body.items.3.name."""
    stack: list[tuple[object, str]] = [(data, "body")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path
        elif isinstance(value, dict):
            for k, v in value.items():
                if "\x00" in k:
                    return path
                stack.append((v, f"{path}.{k}"))
        elif isinstance(value, list):
            stack.extend((v, f"{path}.{i}") for i, v in enumerate(value))
    return None
