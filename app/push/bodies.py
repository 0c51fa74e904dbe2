"""A push request body as a list of flat records: JSON array, NDJSON, CSV or XLSX (first sheet).

XLSX goes through app/sheets (size and shape checks, then the parse in a separate, limited process);
CSV and JSON are decoded off the event loop. The first row of a CSV or XLSX names the columns.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

import anyio

from app.errors import FieldError, Problem
from app.sheets.guard import Limits
from app.sheets.reader import read_first_sheet

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
CSV_TYPES = ("text/csv",)
XLSX_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)
ALL_TYPES = JSON_TYPES + NDJSON_TYPES + CSV_TYPES + XLSX_TYPES


def _bad(message: str, code: str = "push.body_unreadable") -> Problem:
    return Problem(400, code, "无法解析推送内容", errors=[FieldError("body", code, message)])


def _objects(items: object) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
        raise _bad("应为记录对象的数组", "push.body_shape")
    return items


def _json(content: bytes) -> list[dict[str, Any]]:
    try:
        return _objects(json.loads(content))
    except (ValueError, RecursionError):
        raise _bad("JSON 格式错误") from None


def _ndjson(content: bytes) -> list[dict[str, Any]]:
    out: list[object] = []
    for n, line in enumerate(content.splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except (ValueError, RecursionError):
                raise _bad(f"第 {n} 行不是有效的 JSON") from None
    return _objects(out)


def _table(rows: list[list[object]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    out = []
    for row in rows[1:]:
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
            continue
        rec = {}
        for h, v in zip(header, row, strict=False):  # a sheet row may be shorter or longer than its header
            if h:
                rec[h] = v.isoformat() if isinstance(v, (date, datetime)) else v
        out.append(rec)
    return out


def _csv(content: bytes) -> list[dict[str, Any]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad("CSV 应为 UTF-8 编码") from None
    rows: list[list[object]] = [[c if c != "" else None for c in r] for r in csv.reader(io.StringIO(text))]
    return _table(rows)


async def read_body(content: bytes, media_type: str) -> list[dict[str, Any]]:
    if media_type in XLSX_TYPES:
        sheet = await read_first_sheet(content, Limits(max_rows=20_001, max_cols=120))
        return await anyio.to_thread.run_sync(_table, sheet.rows)
    if media_type in NDJSON_TYPES:
        return await anyio.to_thread.run_sync(_ndjson, content)
    if media_type in CSV_TYPES:
        return await anyio.to_thread.run_sync(_csv, content)
    if media_type in JSON_TYPES or media_type == "":
        return await anyio.to_thread.run_sync(_json, content)
    raise Problem(
        415,
        "push.media_type",
        "不支持的内容类型",
        detail="可用：application/json、application/x-ndjson、text/csv、XLSX",
    )
