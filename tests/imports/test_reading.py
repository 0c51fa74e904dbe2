"""Reading legacy sheets: layout detection against the generator's truth, XLSX and CSV alike, and
the caps that refuse a file before (or instead of) parsing it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from app.imports.reading import (
    ImportLimits,
    flatten_headers,
    read_table,
    row_kind,
    sniff_encoding,
)
from app.imports.sample import FLAT, write_csv, write_xlsx
from app.sheets.guard import SheetRefused


@pytest.fixture(scope="module")
def sample_xlsx(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("sheets") / "人口.xlsx"
    return path, write_xlsx(path, 400, seed=11)


def test_layout_of_the_messy_sample(sample_xlsx) -> None:
    path, truth = sample_xlsx
    t = read_table(path)
    assert t.sheet_name == "人口信息" and t.sheet_names == ["人口信息", "填表说明"]
    assert t.headers == FLAT  # two-row merged header flattened to 上级/下级
    assert len(t.rows) == truth.data_rows == 400
    assert t.rows[0].row_no == 5 and t.rows[0].cells[0] == "1"
    assert [no for no, _ in t.skipped] == truth.skipped_rows
    reasons = dict(t.skipped)
    assert reasons[1] == reasons[2] == "标题行"
    last = truth.skipped_rows[-3:]
    assert [reasons[n] for n in last] == ["合计行", "空行", "表尾（填表人、审核人、日期等）"]
    # no data row is lost: the 序号 column counts 1..n
    assert [r.cells[0] for r in t.rows] == [str(i) for i in range(1, 401)]


def test_csv_in_gb18030_and_utf8_bom_read_like_the_xlsx(sample_xlsx, tmp_path: Path) -> None:
    path, _ = sample_xlsx
    from_xlsx = read_table(path)
    for encoding in ("gb18030", "utf-8-sig", "utf-8"):
        csv_path = tmp_path / f"人口_{encoding}.csv"
        write_csv(csv_path, 400, seed=11, encoding=encoding)
        t = read_table(csv_path)
        assert t.headers == FLAT
        assert t.skipped == from_xlsx.skipped
        assert [r.row_no for r in t.rows] == [r.row_no for r in from_xlsx.rows]
        assert [r.cells for r in t.rows] == [r.cells for r in from_xlsx.rows], encoding


def test_sniff_encoding() -> None:
    text = "姓名,身份证号码\n张三,110105194912310021\n"
    assert sniff_encoding(text.encode("gbk")) == "gb18030"
    assert sniff_encoding(text.encode("utf-8")) == "utf-8"
    assert sniff_encoding(b"\xef\xbb\xbf" + text.encode()) == "utf-8-sig"


def test_sheet_choice(sample_xlsx) -> None:
    path, _ = sample_xlsx
    assert read_table(path, sheet="人口信息").headers == FLAT
    with pytest.raises(SheetRefused) as e:
        read_table(path, sheet="不存在")
    assert (e.value.status, e.value.code) == (422, "import.sheet_not_found")
    with pytest.raises(SheetRefused) as e:  # one line of notes: no header row to be found
        read_table(path, sheet="填表说明")
    assert (e.value.status, e.value.code) == (422, "import.no_header")


def test_flatten_headers() -> None:
    top = ["序号", "户籍地址", None, None, "姓名", None]
    below = [None, "区县", "乡镇", "村", None, None]
    assert flatten_headers(top, below, 7) == [
        "序号",
        "户籍地址/区县",
        "户籍地址/乡镇",
        "户籍地址/村",
        "姓名",
        "列F",
        "列G",
    ]
    assert flatten_headers(["姓名", "性别"], None, 2) == ["姓名", "性别"]


@pytest.mark.parametrize(
    "cells, reason",
    [
        ([None, None], "空行"),
        (["合计", "共3人"], "合计行"),
        (["小  计", None, "12"], "合计行"),
        (["填表人：李明", None, "审核人：王芳"], "表尾（填表人、审核人、日期等）"),
        (["填报日期：2024年1月5日"], "表尾（填表人、审核人、日期等）"),
        (["1", "合计张", "男"], None),  # a name that starts like 合计 is still a person
        (["3", "张三", "男", "110105194912310021"], None),
    ],
)
def test_row_kind(cells, reason) -> None:
    assert row_kind(cells) == reason


def test_header_row_and_data_right_below(tmp_path: Path) -> None:
    """A one-row header with data directly below: the first data row is no sub-header."""
    p = tmp_path / "plain.csv"
    p.write_text(
        "\n\n某村低保户名册\n姓名,性别,身份证号码,联系电话\n张三,男,110105194912310021,无\n"
        "李四,女,,13812345678\n",
        encoding="utf-8",
    )
    t = read_table(p)
    assert t.headers == ["姓名", "性别", "身份证号码", "联系电话"]
    assert [r.row_no for r in t.rows] == [5, 6]
    assert t.skipped == [(1, "空行"), (2, "空行"), (3, "标题行")]
    assert t.rows[1].cells == ("李四", "女", None, "13812345678")


def test_repeated_header_row_is_skipped(tmp_path: Path) -> None:
    p = tmp_path / "pages.csv"
    p.write_text("姓名,性别\n张三,男\n姓名,性别\n李四,女\n", encoding="utf-8")
    t = read_table(p)
    assert [r.cells[0] for r in t.rows] == ["张三", "李四"]
    assert t.skipped == [(3, "重复的表头行")]


# --- caps: refused with a status a caller can return, never a crash -------------------------------


def test_oversize_file_refused_before_reading(sample_xlsx) -> None:
    path, _ = sample_xlsx
    with pytest.raises(SheetRefused) as e:
        read_table(path, limits=ImportLimits(max_file_bytes=1000))
    assert (e.value.status, e.value.code) == (413, "import.file_too_large")
    assert read_table(path).rows  # the same file under the default caps reads


def test_dimension_bomb_refused(tmp_path: Path) -> None:
    """A few KB declaring a cell at XFD1048576: refused before calamine fills the rectangle."""
    p = tmp_path / "bomb.xlsx"
    wb = xlsxwriter.Workbook(str(p))
    ws = wb.add_worksheet()
    ws.write(0, 0, "姓名")
    ws.write(0, 1, "性别")
    ws.write(1_048_575, 16_383, "x")
    wb.close()
    assert p.stat().st_size < 10_000
    with pytest.raises(SheetRefused) as e:
        read_table(p)
    assert e.value.status == 413 and e.value.code.startswith("xlsx.too_many")


def test_row_cap_on_csv(tmp_path: Path) -> None:
    p = tmp_path / "long.csv"
    p.write_text("姓名,性别\n" + "张三,男\n" * 60, encoding="utf-8")
    assert len(read_table(p, limits=ImportLimits(max_rows=100)).rows) == 60
    with pytest.raises(SheetRefused) as e:
        read_table(p, limits=ImportLimits(max_rows=50))
    assert (e.value.status, e.value.code) == (413, "import.too_many_rows")


def test_row_cap_on_xlsx(sample_xlsx) -> None:
    path, _ = sample_xlsx
    with pytest.raises(SheetRefused) as e:
        read_table(path, limits=ImportLimits(max_rows=100))
    assert e.value.status == 413


@pytest.mark.parametrize(
    "name, content",
    [
        ("x.xlsx", b"PK\x03\x04 this is not a zip at all" * 10),
        ("x.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600),
        ("x.pdf", b"%PDF-1.4 not a sheet"),
    ],
)
def test_unreadable_files_refused(tmp_path: Path, name: str, content: bytes) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(SheetRefused) as e:
        read_table(p)
    assert e.value.status == 422


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    p = tmp_path / "notes.xlsx"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(SheetRefused) as e:
        read_table(p)
    assert e.value.status == 422


def _sheet_zip(path: Path, sheet_xml: str) -> zipfile.ZipFile:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
    return zipfile.ZipFile(path)


@pytest.mark.parametrize(
    "cells, extent",
    [
        ('<row r="1"><c r="A1"/><c r="C1"/></row><row r="7"><c r="B7"/></row>', (7, 3)),
        # no references: cells and rows follow the previous ones (the fallback to expat)
        ("<row><c/><c/><c/><c/></row><row><c/></row>", (2, 4)),
        # a namespace prefix and single quotes: the fallback too
        ("<x:row r='3'><x:c r='E3'/></x:row>", (3, 5)),
        # a cell reference beyond its row's own number still counts
        ('<row r="1"><c r="A9"/></row>', (9, 1)),
    ],
)
def test_fast_extent_scan_agrees_with_expat(tmp_path: Path, cells: str, extent) -> None:
    from app.sheets.guard import Limits, sheet_extent, sheet_extent_scan

    xml = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{cells}</sheetData></worksheet>"
    )
    z = _sheet_zip(tmp_path / "s.xlsx", xml)
    limits = Limits()
    assert sheet_extent(z, "xl/worksheets/sheet1.xml", limits) == extent
    assert sheet_extent_scan(z, "xl/worksheets/sheet1.xml", limits) == extent


def test_fast_extent_scan_refuses_what_expat_refuses(tmp_path: Path) -> None:
    from app.sheets.guard import Limits, sheet_extent_scan

    limits = Limits(max_rows=100, max_cols=10)
    for cells in (
        '<row r="1"><c r="A101"/></row>',
        '<row r="1"><c r="K1"/></row>',
        '<row r="500"/>',
        '<row r="1">' + "<c/>" * 11 + "</row>",
    ):
        xml = f"<worksheet><sheetData>{cells}</sheetData></worksheet>"
        z = _sheet_zip(tmp_path / "s.xlsx", xml)
        with pytest.raises(SheetRefused) as e:
            sheet_extent_scan(z, "xl/worksheets/sheet1.xml", limits)
        assert e.value.status == 413, cells


def test_old_xls_with_merged_two_row_header() -> None:
    """fixtures/legacy_lowincome.xls: a BIFF8 workbook written once with xlwt 1.3.0 (not a
    dependency): a title, 序号/姓名/身份证号码/出生日期 merged down over two header rows, 联系方式
    merged across 手机号码/固定电话, a date cell, an ID typed as a number, 合计 and 填表人 rows."""
    from app.imports.convert import convert_row
    from app.imports.mapping import propose_mapping

    t = read_table(Path(__file__).parent / "fixtures" / "legacy_lowincome.xls")
    assert t.sheet_names == ["低保户名册", "说明"]
    assert t.headers == ["序号", "姓名", "身份证号码", "联系方式/手机号码", "联系方式/固定电话", "出生日期"]
    assert t.skipped == [(1, "标题行"), (7, "合计行"), (8, "空行"), (9, "表尾（填表人、审核人、日期等）")]
    assert [r.row_no for r in t.rows] == [4, 5, 6]
    assert t.rows[2].cells[2] == "110105491231002"  # the number cell, as its digits
    mapping = propose_mapping("person", t.headers)
    converted = [convert_row("person", mapping, r)[0] for r in t.rows]
    assert {c["id_number"] for c in converted} == {"11010519491231002X"}
    assert [str(c["birth_date"]) for c in converted] == ["1949-12-31"] * 3  # cell, 1949.12, serial
