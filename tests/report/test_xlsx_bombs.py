"""Item 11: workbooks built to exhaust the reader. Each is refused with a 413 problem+json before any
reader expands it, the service answers the next request, and a normal upload still works.

Never run these against an unguarded reader without `ulimit -v`: it tries to allocate 512 GiB."""

from __future__ import annotations

import io
import re
import zipfile

import xlsxwriter

from app.sheets.guard import Limits
from app.sheets.reader import read_first_sheet
from tests.report.test_report_inputs import _dispatched, _template
from tests.report.test_workflow import fill_sheet, ok, problem

TASKS = "/api/v1/report-tasks"
SPEC = _template(
    "bombs", "导入检查", [{"kind": "gap", "code": "visited", "label": "是否走访", "type": "boolean"}]
)


def dimension_bomb() -> bytes:
    """One cell at XFD1048576: about 1.5 KB, 17 billion cells for a reader that fills the empty area."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    wb.add_worksheet().write_string(1_048_575, 16_383, "x")
    wb.close()
    return buf.getvalue()


def _rewrite(content: bytes, part: str, edit) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, edit(data) if info.filename == part else data)
    return out.getvalue()


def undeclared_bomb() -> bytes:
    """The same cell with no <dimension> at all: only the cell reference tells where it is."""
    return _rewrite(
        dimension_bomb(), "xl/worksheets/sheet1.xml", lambda d: re.sub(rb"<dimension [^>]*/>", b"", d)
    )


def shared_strings_bomb(normal: bytes) -> bytes:
    """A real task sheet whose shared-strings part inflates from a few KB to 40 MiB."""

    def inflate(data: bytes) -> bytes:
        filler = b"<si><t>" + b"a" * 1000 + b"</t></si>"
        return data.replace(b"</sst>", filler * (40 * 1024) + b"</sst>")

    return _rewrite(normal, "xl/sharedStrings.xml", inflate)


async def _upload(client, headers, task: int, content: bytes):
    return await client.post(
        f"{TASKS}/{task}/xlsx",
        headers=headers,
        files={"file": ("t.xlsx", content, "application/octet-stream")},
    )


async def test_item11_xlsx_bombs_are_refused_and_service_stays_up(client, world, people):
    task = (await _dispatched(client, world, SPEC, "2026-11"))["2026-11"]
    bomb = dimension_bomb()
    assert len(bomb) < 8000
    body = problem(await _upload(client, world.a, task, bomb), 413, "xlsx.too_large")
    assert body["errors"][0]["path"] == "file"
    assert body["errors"][0]["code"] in {"xlsx.too_many_rows", "xlsx.too_many_columns"}
    body = problem(await _upload(client, world.a, task, undeclared_bomb()), 413, "xlsx.too_large")
    assert body["errors"][0]["code"] in {"xlsx.too_many_rows", "xlsx.too_many_columns"}
    normal = (await client.get(f"{TASKS}/{task}/xlsx", headers=world.a)).content
    strings = shared_strings_bomb(normal)
    assert len(strings) < 1 << 20
    body = problem(await _upload(client, world.a, task, strings), 413, "xlsx.too_large")
    assert body["errors"][0]["code"] in {"xlsx.shared_strings_too_large", "xlsx.compression_ratio"}
    problem(await _upload(client, world.a, task, b"PK\x03\x04 not a zip"), 422, "validation.failed")
    # Still serving, and an ordinary sheet of the task goes through.
    view = await ok(await client.get(f"{TASKS}/{task}", headers=world.a))
    assert view["rejects"] == [] and all(i["cells"]["visited"] is None for i in view["items"])
    filled = fill_sheet(normal, {i["key"]: {"是否走访": "是"} for i in view["items"]})
    up = await ok(await _upload(client, world.a, task, filled))
    assert up["saved"] == len(view["items"]) and up["rejected"] == 0


async def test_item11_reader_crash_stays_in_its_worker():
    # Limits that let the bomb through the guard: the reader itself blows its worker's memory limit,
    # and the caller gets a 413 while this process carries on.
    loose = Limits(max_rows=2_000_000, max_cols=20_000, max_cells=10**12)
    try:
        await read_first_sheet(dimension_bomb(), loose)
    except Exception as e:  # noqa: BLE001
        assert getattr(e, "status", None) == 413 and e.code == "xlsx.too_large", e
        assert e.errors[0].code == "xlsx.too_complex"
    else:
        raise AssertionError("the bomb was read")
    sheet = await read_first_sheet(fill_sheet_min(), Limits())
    assert sheet.rows == [["a", 1.0]]


def fill_sheet_min() -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = wb.add_worksheet()
    ws.write_string(0, 0, "a")
    ws.write_number(0, 1, 1)
    wb.close()
    return buf.getvalue()
