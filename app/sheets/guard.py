"""What an XLSX may cost before a parser is allowed near it.

An XLSX is a ZIP of XML parts. A 1.5 KB file can declare (or simply hold) one cell at XFD1048576, and a
reader that fills the empty area allocates 17 billion cells; a few KB can also inflate to gigabytes of
shared strings. So, before reading: count and size the ZIP members from the central directory, cap
their compression ratio, read each worksheet's `<dimension ref>` and scan its row and cell references
(streamed, bounded by the member caps) for the real extent, and refuse anything beyond the caller's
row and column limits. Only the standard library is used: this module runs inside the parse worker.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from xml.etree import ElementTree as ET
from xml.parsers import expat

MAX_EXCEL_ROWS, MAX_EXCEL_COLS = 1_048_576, 16_384


@dataclass(frozen=True)
class Limits:
    max_rows: int = 10_000  # including the header row
    max_cols: int = 200
    max_cells: int = 2_000_000  # rows × columns: a reader may fill the whole rectangle
    max_members: int = 300
    max_member_bytes: int = 64 << 20  # uncompressed, any one part
    max_total_bytes: int = 160 << 20  # uncompressed, all parts
    max_shared_strings_bytes: int = 32 << 20
    max_ratio: int = 100  # uncompressed / compressed, for parts over ratio_floor_bytes
    ratio_floor_bytes: int = 1 << 20
    max_output_bytes: int = 96 << 20  # what the worker may send back

    def as_dict(self) -> dict:
        return asdict(self)


class SheetRefused(Exception):
    """status 413: the workbook is beyond the limits; 422: it is not a workbook we can read."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


@dataclass
class WorkbookInfo:
    sheets: dict[str, tuple[int, int]] = field(default_factory=dict)  # part name -> (rows, columns) in use
    properties: dict[str, str] = field(
        default_factory=dict
    )  # custom document properties (docProps/custom.xml)


def _too_large(code: str, message: str) -> SheetRefused:
    return SheetRefused(413, code, message)


def unreadable() -> SheetRefused:
    return SheetRefused(422, "xlsx.unreadable", "无法读取该文件，请上传 XLSX 格式的表格")


# Wide enough to see any reference past Excel's own limits (then refused by _within), narrow enough
# that no reference costs more than a few operations; anything else is not a cell reference.
_REF = re.compile(r"\$?([A-Z]{1,4})\$?([0-9]{1,8})")


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def check_zip(z: zipfile.ZipFile, limits: Limits) -> None:
    """Central-directory checks: nothing is decompressed here."""
    infos = z.infolist()
    if len(infos) > limits.max_members:
        raise _too_large("xlsx.too_many_parts", f"文件包含的部件过多（超过 {limits.max_members} 个）")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise SheetRefused(422, "xlsx.encrypted", "文件已加密，请取消密码后再上传")
        size = info.file_size
        total += size
        if size > limits.max_member_bytes or total > limits.max_total_bytes:
            raise _too_large("xlsx.expands_too_large", "文件解压后过大，请精简后再上传")
        if info.filename.endswith("sharedStrings.xml") and size > limits.max_shared_strings_bytes:
            raise _too_large("xlsx.shared_strings_too_large", "表格中的文字内容过多，请精简后再上传")
        if size > limits.ratio_floor_bytes and size > limits.max_ratio * max(info.compress_size, 1):
            raise _too_large("xlsx.compression_ratio", "文件压缩比异常，疑似压缩炸弹，已拒绝")


def _no_doctype(*_args) -> None:
    # OOXML parts never carry a DTD; one can only be there to declare entities to expand.
    raise unreadable()


def sheet_extent(z: zipfile.ZipFile, name: str, limits: Limits) -> tuple[int, int]:
    """Rows and columns a worksheet part really uses: its declared dimension, then every row and cell
    reference, streamed through expat (no tree is built). Cells without a reference follow the previous
    one, rows likewise, as readers place them.

    zipfile stops at the declared uncompressed size, which check_zip has capped, so this is bounded."""
    at = {"row": 0, "col": 0, "max_row": 0, "max_col": 0}

    def start(tag: str, attrs: dict) -> None:
        tag = tag.rsplit(":", 1)[-1]
        if tag == "dimension":
            ref = attrs.get("ref", "")
            last = _REF.fullmatch(ref.split(":")[-1].upper()) if ref else None
            if last:
                _within(int(last[2]), _col_number(last[1]), limits)
        elif tag == "row":
            r = attrs.get("r", "")
            at["row"] = int(r) if r.isdigit() else at["row"] + 1
            at["col"] = 0
            at["max_row"] = max(at["max_row"], at["row"])
            _within(at["max_row"], max(at["max_col"], 1), limits)
        elif tag == "c":
            ref = attrs.get("r")
            m = _REF.fullmatch(ref.upper()) if ref is not None else None
            if ref is not None and m is None:
                raise unreadable()
            if m:
                at["col"] = _col_number(m[1])
                at["max_row"] = max(at["max_row"], int(m[2]))
            else:
                at["col"] += 1
            at["max_col"] = max(at["max_col"], at["col"])
            _within(at["max_row"], at["max_col"], limits)

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = _no_doctype
    parser.EntityDeclHandler = _no_doctype
    try:
        with z.open(name) as raw:
            while chunk := raw.read(1 << 16):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except (expat.ExpatError, zipfile.BadZipFile, zlib.error, EOFError, ValueError):
        raise unreadable() from None
    return at["max_row"], at["max_col"]


_FAST_C = re.compile(rb'<c r="([A-Z]{1,4})([0-9]{1,8})"')
_FAST_ROW = re.compile(rb'<row r="([0-9]{1,8})"')
_FAST_DIM = re.compile(rb'<dimension ref="([^"]*)"')
_ODD = (b":c ", b":c>", b":c/", b":row", b"<c>", b"<row>", b"<c/", b"<row/")
_MAX_TAG_BYTES = 1 << 16


def sheet_extent_scan(z: zipfile.ZipFile, name: str, limits: Limits) -> tuple[int, int]:
    """sheet_extent without a Python callback per cell, for imports of up to a million rows.

    Excel, LibreOffice and xlsxwriter write every cell as `<c r="B7"` and every row as
    `<row r="7"`. When the count of such references equals the count of `<c ` and `<row ` tags
    (bytes.count: text can't hold a raw "<"), the extent is the largest reference (and the declared
    dimension). Anything else (a tag without a reference, another attribute order, a namespace prefix, text this scan
    can't tell from a tag) falls back to sheet_extent. Tag-like text in CDATA or comments can only
    make the extent larger or force the fallback, never hide a cell."""
    max_row = max_col = 0
    tail = b""
    try:
        with z.open(name) as raw:
            while True:
                chunk = raw.read(1 << 22)
                data = tail + chunk
                cut = data.rfind(b"<") if chunk else len(data)
                cut = len(data) if cut < 0 else cut
                body, tail = data[:cut], data[cut:]
                if len(tail) > _MAX_TAG_BYTES or any(odd in body for odd in _ODD):
                    return sheet_extent(z, name, limits)
                refs = _FAST_C.findall(body)
                rows = _FAST_ROW.findall(body)
                if len(refs) != body.count(b"<c ") or len(rows) != body.count(b"<row "):
                    return sheet_extent(z, name, limits)
                if refs:
                    letters = {c for c, _ in refs}
                    max_col = max(max_col, *(_col_number(c.decode()) for c in letters))
                    max_row = max(max_row, max(int(r) for _, r in refs))
                if rows:
                    max_row = max(max_row, max(map(int, rows)))
                for dim in _FAST_DIM.findall(body):
                    last = _REF.fullmatch(dim.decode("ascii", "replace").upper().split(":")[-1])
                    if last:
                        _within(int(last[2]), _col_number(last[1]), limits)
                _within(max_row, max(max_col, 1), limits)
                if not chunk:
                    break
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError):
        raise unreadable() from None
    return max_row, max_col


def _within(rows: int, cols: int, limits: Limits) -> None:
    if rows > limits.max_rows or rows > MAX_EXCEL_ROWS:
        raise _too_large("xlsx.too_many_rows", f"表格行数超出本次导入的上限（{limits.max_rows} 行）")
    if cols > limits.max_cols or cols > MAX_EXCEL_COLS:
        raise _too_large("xlsx.too_many_columns", f"表格列数超出本次导入的上限（{limits.max_cols} 列）")
    if rows * cols > limits.max_cells:
        raise _too_large("xlsx.too_many_cells", "表格单元格区域过大，请删除多余的行列后再上传")


def custom_properties(z: zipfile.ZipFile) -> dict[str, str]:
    """Custom document properties (name -> text): where our downloads say which task they belong to."""
    try:
        info = z.getinfo("docProps/custom.xml")
    except KeyError:
        return {}
    if info.file_size > 256 << 10:
        return {}
    try:
        data = z.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        return {}
    if b"<!DOCTYPE" in data.upper():
        return {}
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return {}
    out = {}
    for prop in root:
        name = prop.get("name")
        if name and len(prop):
            out[name] = (prop[0].text or "")[:200]
    return out


def inspect(
    content: bytes,
    limits: Limits,
    extent: Callable[[zipfile.ZipFile, str, Limits], tuple[int, int]] = sheet_extent,
) -> WorkbookInfo:
    """Every check above, in order of cost; SheetRefused for anything beyond the limits.
    `extent`: sheet_extent (expat) or sheet_extent_scan (no callback per cell, large imports)."""
    try:
        z = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise unreadable() from None
    with z:
        check_zip(z, limits)
        out = WorkbookInfo(properties=custom_properties(z))
        names = [n for n in z.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        if not names:
            raise unreadable()
        for name in names:
            out.sheets[name] = extent(z, name, limits)
        return out
