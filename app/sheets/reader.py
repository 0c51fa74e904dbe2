"""Read the first sheet of an uploaded workbook through the parse worker, off the event loop and out of
this process: guard checks first, then the reader, under memory and time limits. Whatever happens in
the worker, the caller gets either the cells or a problem+json (413 beyond the limits, 422 unreadable).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import anyio

from app.errors import FieldError, Problem
from app.sheets.guard import Limits

WALL_SECONDS = 90  # a 20,000-row task sheet reads in seconds; the slack is for a loaded machine
PARALLEL = 2  # workers at once per event loop; more uploads wait their turn
_ROOT = Path(__file__).resolve().parent.parent.parent  # where `-m app.sheets.worker` resolves
_slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class Sheet:
    rows: list[list[object]]
    properties: dict[str, str] = field(default_factory=dict)


def refused(status: int, code: str, message: str, path: str = "file") -> Problem:
    title = "文件过大或超出导入限制" if status == 413 else "提交的数据未通过校验"
    return Problem(
        status,
        "xlsx.too_large" if status == 413 else "validation.failed",
        title,
        errors=[FieldError(path, code, message)],
    )


def _untag(v: object) -> object:
    if isinstance(v, dict):
        if "$date" in v:
            return date.fromisoformat(v["$date"])
        if "$datetime" in v:
            return datetime.fromisoformat(v["$datetime"])
        if "$time" in v:
            return time.fromisoformat(v["$time"])
        if "$seconds" in v:
            return timedelta(seconds=v["$seconds"])
    return v


def _slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = asyncio.Semaphore(PARALLEL)
    return _slots[loop]


async def read_first_sheet(content: bytes, limits: Limits) -> Sheet:
    async with _slot():
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.sheets.worker",
            json.dumps(limits.as_dict()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=_ROOT,
            env={k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL") if k in os.environ},
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(content), WALL_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise refused(413, "xlsx.too_complex", "表格过大或过于复杂，读取超时") from None
        except asyncio.CancelledError:
            proc.kill()  # the request went away: don't leave the worker running
            raise
    if proc.returncode != 0:
        # Killed by its limits (memory, CPU) or crashed in the reader: the service itself is fine.
        raise refused(413, "xlsx.too_complex", "表格过大、过于复杂或结构异常，无法读取")
    return await anyio.to_thread.run_sync(_decode, out)  # up to tens of MB of JSON: not on the loop


def _decode(out: bytes) -> Sheet:
    try:
        result = json.loads(out)
    except ValueError:
        raise refused(422, "xlsx.unreadable", "无法读取该文件，请上传 XLSX 格式的表格") from None
    if "refused" in result:
        r = result["refused"]
        raise refused(int(r["status"]), str(r["code"]), str(r["message"]))
    return Sheet([[_untag(v) for v in line] for line in result["sheet"]], result.get("properties") or {})
