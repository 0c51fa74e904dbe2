"""Reading a legacy sheet (XLSX/XLS/CSV) into header labels and raw text rows.

Township sheets are reports first and tables second: a title and a "填报单位" line above the header,
headers over two rows with merged parents (户籍地址 over 区县 / 乡镇 / 村), a 合计 row, and 填表人 /
审核人 / 填报日期 under the table. `read_table` finds the header, flattens two-row headers to
"上级/下级", and reports every row it leaves out with its reason, so nothing disappears silently.

Caps come before any parsing: the file size here; for XLSX the ZIP and dimension checks of
`app.sheets.guard`; the parse itself runs in `app.sheets.stream`, a separate process under memory
and CPU limits. CSV is read in this process: the csv module expands nothing, its field size is
capped and rows and columns are counted as they stream. `read_table` blocks: callers on an event
loop run it in a thread (anyio.to_thread).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.catalog.validators import normalize_text
from app.sheets.guard import Limits, SheetRefused

_ROOT = Path(__file__).resolve().parent.parent.parent  # where `-m app.sheets.stream` resolves
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
UNREADABLE = "无法读取该文件，请上传 XLSX、XLS 或 CSV 格式的表格"
HEADER_WINDOW = 30  # rows searched for the header


@dataclass(frozen=True)
class RawRow:
    """One data row as the clerk typed it."""

    row_no: int  # 1-based Excel row number (CSV: line number)
    cells: tuple[str | None, ...]  # text of each column, None for blank


@dataclass
class SheetTable:
    file_name: str
    sheet_name: str
    sheet_names: list[str]
    headers: list[str]  # one flattened label per column ("户籍地址/村" for two-row headers)
    rows: list[RawRow]
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row_no, reason)


@dataclass(frozen=True)
class ImportLimits:
    """What an import file may cost. The defaults admit a 1,048,576-row sheet (Excel's limit)."""

    max_file_bytes: int = 512 << 20
    max_rows: int = 1_048_576
    max_cols: int = 256
    max_cells: int = 40_000_000
    max_field_chars: int = 32_767  # Excel's own cell limit
    memory_bytes: int = 6 << 30  # the parse worker's address space
    cpu_seconds: int = 900

    def sheet_limits(self) -> Limits:
        return Limits(
            max_rows=self.max_rows,
            max_cols=self.max_cols,
            max_cells=self.max_cells,
            max_member_bytes=2 << 30,
            max_total_bytes=3 << 30,
            max_shared_strings_bytes=1 << 30,
            max_output_bytes=0,
        )


DEFAULT_LIMITS = ImportLimits()


def _unreadable() -> SheetRefused:
    return SheetRefused(422, "import.unreadable", UNREADABLE)


# --- raw lines from the file ------------------------------------------------------------


@dataclass
class _Source:
    sheet_name: str
    sheet_names: list[str]
    lines: Iterator[list[str | None]]


def _excel_lines(path: Path, sheet: str | None, limits: ImportLimits) -> _Source:
    options = {
        "path": str(path),
        "sheet": sheet,
        "limits": limits.sheet_limits().as_dict(),
        "memory_bytes": limits.memory_bytes,
        "cpu_seconds": limits.cpu_seconds,
    }
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL") if k in os.environ}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.sheets.stream", json.dumps(options)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=_ROOT,
        env=env,
    )
    assert proc.stdout is not None
    out = io.TextIOWrapper(proc.stdout, encoding="utf-8")

    def fail() -> SheetRefused:
        proc.kill()
        proc.wait()
        if proc.returncode not in (0, None) and proc.returncode < 0:
            return SheetRefused(413, "import.too_complex", "表格过大、过于复杂或结构异常，无法读取")
        return _unreadable()

    first = out.readline()
    try:
        head = json.loads(first)
    except ValueError:
        raise fail() from None
    if "refused" in head:
        proc.wait()
        r = head["refused"]
        raise SheetRefused(int(r["status"]), str(r["code"]), str(r["message"]))

    def lines() -> Iterator[list[str | None]]:
        try:
            for text in out:
                item = json.loads(text)
                if isinstance(item, list):
                    yield item
                    continue
                if "refused" in item:
                    r = item["refused"]
                    raise SheetRefused(int(r["status"]), str(r["code"]), str(r["message"]))
                if "end" in item:
                    proc.wait()
                    return
            raise fail()  # the worker died before its last line (memory or CPU limit)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    return _Source(str(head["sheet"]), [str(n) for n in head["sheet_names"]], lines())


def sniff_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (a superset of GBK and GB2312)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def _csv_lines(path: Path, limits: ImportLimits) -> _Source:
    with open(path, "rb") as fh:
        sample = fh.read(1 << 16)
    if b"\x00" in sample and not sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _unreadable()
    encoding = sniff_encoding(sample)
    text_sample = sample.decode(encoding, errors="ignore")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text_sample[:8192], ",\t;|")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(limits.max_field_chars)

    def lines() -> Iterator[list[str | None]]:
        with open(path, encoding=encoding, errors="replace", newline="") as fh:
            reader = csv.reader(fh, dialect)
            n = 0
            try:
                for rec in reader:
                    n += 1
                    if n > limits.max_rows:
                        raise SheetRefused(
                            413, "import.too_many_rows", f"表格行数超出本次导入的上限（{limits.max_rows} 行）"
                        )
                    if len(rec) > limits.max_cols:
                        raise SheetRefused(
                            413,
                            "import.too_many_columns",
                            f"表格列数超出本次导入的上限（{limits.max_cols} 列）",
                        )
                    yield [c if c.strip() else None for c in rec]
            except csv.Error:
                msg = f"CSV 文件第 {reader.line_num} 行格式错误（引号不配对或单元格过长）"
                raise SheetRefused(422, "import.csv_malformed", msg) from None

    return _Source(path.stem, [path.stem], lines())


def _open(path: Path, sheet: str | None, limits: ImportLimits) -> _Source:
    try:
        size = path.stat().st_size
    except OSError:
        raise _unreadable() from None
    if size > limits.max_file_bytes:
        raise SheetRefused(
            413, "import.file_too_large", f"文件过大（超过 {limits.max_file_bytes >> 20} MB），请拆分后再上传"
        )
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04") or head == _XLS_MAGIC:
        return _excel_lines(path, sheet, limits)
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        if sheet is not None and sheet != path.stem:
            raise SheetRefused(422, "import.sheet_not_found", f"文件中没有名为“{sheet}”的工作表")
        return _csv_lines(path, limits)
    raise _unreadable()


# --- layout: header, title, totals, footers ----------------------------------------------

_TOTAL = re.compile(r"^(合计|小计|总计|共计|累计|总数)[:：]?$")
_FOOTER = re.compile(
    r"^(填表人|填报人|制表人|审核人|审核|审批人|负责人|单位负责人|分管领导|"
    r"统计人|经办人|联系人|填报日期|填表日期|制表日期|报送日期|日期|注|说明|备注)"
    r"[:：]"
)
_TOTAL_CHARS = frozenset("合小总共累计")
_FOOTER_WORDS = ("填表人", "填报人", "制表人", "审核人", "填报日期", "填表日期", "制表日期")
_SPACES = re.compile(r"\s+")


def _squash(s: str) -> str:
    return _SPACES.sub("", normalize_text(s))


def _filled(line: list[str | None]) -> list[int]:
    return [i for i, c in enumerate(line) if c is not None]


def _has_digit(s: str) -> bool:
    return any(ch.isdigit() for ch in s)


def row_kind(cells: list[str | None] | tuple[str | None, ...], header: list[str] | None = None) -> str | None:
    """Why a row below the header is not data (zh-CN), or None for a data row. `header`: the
    header row's labels as `_squash` leaves them, to spot a header repeated on printed pages."""
    filled = [c for c in cells if c is not None]
    if not filled:
        return "空行"
    # Cheap tests on the raw text first: most rows are data, and normalising every cell is not.
    if any(len(c) <= 12 and _TOTAL_CHARS.intersection(c) for c in filled[:3]) and any(
        _TOTAL.match(_squash(c)) for c in filled[:3]
    ):
        return "合计行"
    if len(filled) <= 4:
        squashed = [_squash(c) for c in filled]
        if _FOOTER.match(squashed[0]) or any(w in c for c in squashed for w in _FOOTER_WORDS):
            return "表尾（填表人、审核人、日期等）"
    if (
        header is not None
        and len(filled) == len(header) > 1
        and _squash(filled[0]) == header[0]
        and [_squash(c) for c in filled] == header
    ):
        return "重复的表头行"
    return None


def _is_header(line: list[str | None], widest: int) -> bool:
    filled = [c for c in line if c is not None]
    if len(filled) < max(2, (widest + 1) // 2):
        return False
    texty = sum(1 for c in filled if not _has_digit(c) or len(c) > 20)
    return texty * 10 >= len(filled) * 7 and row_kind(line) is None


def _is_subheader(top: list[str | None], below: list[str | None]) -> bool:
    """A second header row: digit-free short labels, at least one under a merged (blank) parent."""
    filled = _filled(below)
    if not filled:
        return False
    for i in filled:
        c = below[i] or ""
        if _has_digit(c) or len(c) > 30:
            return False
    return any(i >= len(top) or top[i] is None for i in filled)


def column_letters(n: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def flatten_headers(top: list[str | None], below: list[str | None] | None, width: int) -> list[str]:
    """One label per column: "上级/下级" under a merged parent, the parent alone over a vertical
    merge, "列X" (the column's letter) where a column has no header at all."""
    out: list[str] = []
    parent: str | None = None
    for i in range(width):
        t = top[i] if i < len(top) else None
        b = below[i] if below is not None and i < len(below) else None
        t = normalize_text(t) if t else None
        b = normalize_text(b) if b else None
        if t:
            parent = t
        elif not b:
            parent = None  # a gap with nothing below ends the merged parent
        if t and b:
            out.append(f"{t}/{b}")
        elif t:
            out.append(t)
        elif b:
            out.append(f"{parent}/{b}" if parent else b)
        else:
            out.append(f"列{column_letters(i)}")
    return out


@dataclass
class TableStream:
    """A sheet whose header is found and whose data rows are still being read: `rows()` yields them
    one at a time (memory stays flat for a million-row file) and appends to `skipped` as it goes.
    `headers` grows ("列X") if a later row is wider than the header."""

    file_name: str
    sheet_name: str
    sheet_names: list[str]
    headers: list[str]
    skipped: list[tuple[int, str]]
    _pending: list[tuple[int, list[str | None]]]
    _lines: Iterator[list[str | None]]
    _next_no: int
    _header_cells: list[str]

    def rows(self) -> Iterator[RawRow]:
        for row_no, line in self._pending:
            if (r := self._row(row_no, line)) is not None:
                yield r
        self._pending = []
        for line in self._lines:
            row_no = self._next_no
            self._next_no += 1
            if (r := self._row(row_no, line)) is not None:
                yield r

    def _row(self, row_no: int, line: list[str | None]) -> RawRow | None:
        while line and line[-1] is None:
            line = line[:-1]
        reason = row_kind(line, self._header_cells)
        if reason is not None:
            self.skipped.append((row_no, reason))
            return None
        while len(line) > len(self.headers):
            self.headers.append(f"列{column_letters(len(self.headers))}")
        return RawRow(row_no, tuple(line))


def open_table(path: Path, *, sheet: str | None = None, limits: ImportLimits = DEFAULT_LIMITS) -> TableStream:
    """Caps, then the header: title rows above it and the layout of a one- or two-row header."""
    src = _open(Path(path), sheet, limits)
    window: list[list[str | None]] = []
    for line in src.lines:
        window.append(line)
        if len(window) >= HEADER_WINDOW:
            break
    widest = max((len(_filled(line)) for line in window), default=0)
    header_at = next((i for i, line in enumerate(window) if _is_header(line, widest)), None)
    if header_at is None:
        raise SheetRefused(
            422, "import.no_header", f"在前 {HEADER_WINDOW} 行中没有找到表头行（至少两列有列名的一行）"
        )
    skipped = [(i + 1, "空行" if not _filled(window[i]) else "标题行") for i in range(header_at)]
    top = window[header_at]
    body_at = header_at + 1
    below = None
    if body_at < len(window) and _is_subheader(top, window[body_at]):
        below = window[body_at]
        body_at += 1
    width = max([max(_filled(line), default=-1) + 1 for line in window[header_at:]] + [1])
    headers = flatten_headers(top, below, width)
    return TableStream(
        file_name=Path(path).name,
        sheet_name=src.sheet_name,
        sheet_names=src.sheet_names,
        headers=headers,
        skipped=skipped,
        _pending=[(i + 1, window[i]) for i in range(body_at, len(window))],
        _lines=src.lines,
        _next_no=len(window) + 1,
        _header_cells=[_squash(c) for c in top if c is not None and _squash(c)],
    )


def read_table(path: Path, *, sheet: str | None = None, limits: ImportLimits = DEFAULT_LIMITS) -> SheetTable:
    """XLSX/XLS/CSV; caps before reading; the Excel parse runs in app.sheets.stream's worker.

    Raises SheetRefused (status 413 beyond the caps, 422 unreadable): app.sheets.reader.refused
    turns it into the problem+json the API returns."""
    t = open_table(path, sheet=sheet, limits=limits)
    rows = list(t.rows())
    return SheetTable(t.file_name, t.sheet_name, t.sheet_names, t.headers, rows, t.skipped)


__all__ = [
    "ImportLimits",
    "RawRow",
    "SheetTable",
    "TableStream",
    "column_letters",
    "flatten_headers",
    "open_table",
    "read_table",
    "row_kind",
    "sniff_encoding",
]
