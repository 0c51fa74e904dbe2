"""The parse worker: `python -m app.sheets.worker '<limits JSON>'`, the workbook on stdin, one JSON
document on stdout: {"sheet": [[cell, ...], ...], "properties": {...}} or {"refused": {status, code,
message}}.

It runs in its own process under address-space and CPU-time limits (no core dumps), so a reader that
allocates without bound or crashes takes down only this process. Cells that JSON can't hold travel
tagged: {"$date": "2026-11-03"}, {"$datetime": …}, {"$time": …}, {"$seconds": …} (durations).
"""

from __future__ import annotations

import io
import json
import math
import resource
import sys
from datetime import date, datetime, time, timedelta

from app.sheets.guard import Limits, SheetRefused, inspect

MEMORY_BYTES = 1536 << 20
CPU_SECONDS = 30
TOO_COMPLEX = {
    "refused": {"status": 413, "code": "xlsx.too_complex", "message": "表格过大或过于复杂，无法读取"}
}


def _limit() -> None:
    for what, value in (
        (resource.RLIMIT_AS, MEMORY_BYTES),
        (resource.RLIMIT_CPU, CPU_SECONDS),
        (resource.RLIMIT_CORE, 0),
    ):
        _soft, hard = resource.getrlimit(what)
        cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(what, (cap, hard))


def _cell(v: object) -> object:
    if isinstance(v, datetime):
        return {"$datetime": v.isoformat()}
    if isinstance(v, date):
        return {"$date": v.isoformat()}
    if isinstance(v, time):
        return {"$time": v.isoformat()}
    if isinstance(v, timedelta):
        return {"$seconds": v.total_seconds()}
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run(content: bytes, limits: Limits) -> dict:
    from python_calamine import CalamineWorkbook

    try:
        info = inspect(content, limits)  # before the reader sees a byte
    except SheetRefused as r:
        return {"refused": {"status": r.status, "code": r.code, "message": r.message}}
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(content))
        grid = wb.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except MemoryError:
        return TOO_COMPLEX
    except Exception:  # noqa: BLE001 (calamine raises several types for what is not a workbook)
        return {
            "refused": {
                "status": 422,
                "code": "xlsx.unreadable",
                "message": "无法读取该文件，请上传 XLSX 格式的表格",
            }
        }
    except BaseException as e:  # a Rust panic (pyo3 PanicException), e.g. an allocation it gave up on
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return TOO_COMPLEX
    return {"sheet": [[_cell(v) for v in line] for line in grid], "properties": info.properties}


def main() -> None:
    limits = Limits(**json.loads(sys.argv[1]))
    import python_calamine  # noqa: F401  (loaded before the limits, which would count its mapping)

    _limit()
    content = sys.stdin.buffer.read()
    try:
        out = json.dumps(run(content, limits), ensure_ascii=False, allow_nan=False).encode()
    except MemoryError:
        out = json.dumps(TOO_COMPLEX).encode()
    if len(out) > limits.max_output_bytes:
        out = json.dumps(
            {
                "refused": {
                    "status": 413,
                    "code": "xlsx.too_complex",
                    "message": "表格内容过多，请精简后再上传",
                }
            }
        ).encode()
    sys.stdout.buffer.write(out)


if __name__ == "__main__":
    main()
