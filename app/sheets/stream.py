"""The row-streaming parse worker for imports: `python -m app.sheets.stream '<options JSON>'`.

Unlike `app.sheets.worker` (the first sheet of a task upload, one JSON document), an import may be
a whole township's stock data in any sheet of an XLSX or an old XLS, so this worker takes the file's
path and a sheet name and writes NDJSON to stdout:

    {"sheet_names": [...], "sheet": "人口", "width": 14}    first line
    ["1", "张三", "110105194912310021", …]                    one line per row, cells as text
    {"end": 3120}                                            last line
or a single {"refused": {"status", "code", "message"}} line at any point.

XLSX goes through `guard.inspect` (ZIP and dimension caps) before calamine sees a byte; XLS (a
compound file, which calamine also reads) is capped by its file size, by the sheet dimensions
calamine reports before any row is sent, and by this process's address-space and CPU limits. Cells
become the text a clerk would see: numbers without a spurious ".0", dates as ISO dates, and numbers
too large for a float's 15 significant digits (an ID typed as a number) in exponent form so that
convert can say the digits were lost instead of storing wrong ones.
"""

from __future__ import annotations

import json
import math
import resource
import sys
from datetime import date, datetime, time, timedelta
from typing import IO, Any

from app.sheets.guard import Limits, SheetRefused, inspect, sheet_extent_scan

UNREADABLE = "无法读取该文件，请上传 XLSX、XLS 或 CSV 格式的表格"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    for what, value in (
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_CORE, 0),
    ):
        _soft, hard = resource.getrlimit(what)
        cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(what, (cap, hard))


def cell_text(v: object) -> str | None:
    """A cell as the text a clerk sees; None for an empty cell."""
    if v is None:
        return None
    if isinstance(v, str):
        return v if v.strip() else None
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return format(v, ".15g")  # 1.10105194912310e+17: the digits past the 15th are gone
    if isinstance(v, datetime):
        if v.time() == time(0):
            return v.date().isoformat()
        return v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, time):
        return v.isoformat(timespec="seconds")
    if isinstance(v, timedelta):
        return str(v.total_seconds())
    return str(v)


def _refuse(out: IO[str], status: int, code: str, message: str) -> None:
    out.write(
        json.dumps({"refused": {"status": status, "code": code, "message": message}}, ensure_ascii=False)
        + "\n"
    )


def run(options: dict[str, Any], out: IO[str]) -> None:
    from python_calamine import CalamineWorkbook

    limits = Limits(**options["limits"])
    path: str = options["path"]
    with open(path, "rb") as fh:
        head = fh.read(8)
    try:
        if head.startswith(b"PK"):
            with open(path, "rb") as fh:
                inspect(fh.read(), limits, sheet_extent_scan)  # ZIP, every sheet's extent
        elif head != _XLS_MAGIC:
            raise SheetRefused(422, "import.unreadable", UNREADABLE)
    except SheetRefused as r:
        _refuse(out, r.status, r.code, r.message)
        return
    try:
        wb = CalamineWorkbook.from_path(path)
        names = list(wb.sheet_names)
        wanted = options.get("sheet")
        if wanted is not None and wanted not in names:
            _refuse(out, 422, "import.sheet_not_found", f"文件中没有名为“{wanted}”的工作表")
            return
        sheet = wb.get_sheet_by_name(wanted if wanted is not None else names[0])
        end = sheet.end  # (row, column) of the last used cell, 0-based; None for an empty sheet
        rows, cols = (end[0] + 1, end[1] + 1) if end else (0, 0)
        if rows > limits.max_rows or cols > limits.max_cols or rows * cols > limits.max_cells:
            _refuse(
                out,
                413,
                "import.too_large",
                f"表格超出本次导入的上限（{limits.max_rows} 行、{limits.max_cols} 列）",
            )
            return
        out.write(
            json.dumps({"sheet_names": names, "sheet": sheet.name, "width": cols}, ensure_ascii=False) + "\n"
        )
        n = 0
        for line in sheet.iter_rows():
            out.write(json.dumps([cell_text(v) for v in line], ensure_ascii=False) + "\n")
            n += 1
        out.write(json.dumps({"end": n}) + "\n")
    except MemoryError:
        _refuse(out, 413, "import.too_complex", "表格过大或过于复杂，无法读取")
    except Exception:  # noqa: BLE001 (calamine raises several types for what is not a workbook)
        _refuse(out, 422, "import.unreadable", UNREADABLE)
    except BaseException as e:  # a Rust panic (pyo3 PanicException): an allocation it gave up on
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        _refuse(out, 413, "import.too_complex", "表格过大或过于复杂，无法读取")


def main() -> None:
    options = json.loads(sys.argv[1])
    import python_calamine  # noqa: F401  (loaded before the limits, which would count its mapping)

    _limit(int(options["memory_bytes"]), int(options["cpu_seconds"]))
    out = open(sys.stdout.fileno(), "w", encoding="utf-8", buffering=1 << 20, closefd=False)
    run(options, out)
    out.flush()


if __name__ == "__main__":
    main()
