"""Cell conversion for imported rows: the text a clerk typed -> the typed value the catalogue
stores, plus per-cell issues (row, column, raw value, stable code, zh-CN message; error or warning).

What legacy sheets hold, beyond what app/catalog/coerce.py accepts from the API:
- 15-digit IDs (issued before 1999): "19" goes in after the division code and the GB 11643 check
  character is computed; full-width digits, spaces and a lower-case x are normalised; an ID Excel
  kept as a number (1.10105194912310e+17) has lost its last digits and is refused as such;
- dates as 1974.02 (no day: the 1st, or the ID's day when the ID agrees), 1974-2-3, 1974.2.3,
  2024年1月5日, 20240105, 197402, Excel serials (45292 -> 2024-01-01), date cells;
- 无, /, -, ——, 暂无 … meaning "nothing": empty, with a warning (a boolean's 无 is 否);
- phones with spaces, +86, full-width digits; several in one cell: the first, with a warning;
- numbers with thousands separators, 万, units;
- code lists by value, by label, by common wording (男性, 汉, 妻 -> 配偶, 儿子 -> 子 for GB/T 4761);
- sex and birth date against the ID: a contradiction is a warning, the clerk decides.
Blank cells are absent from the values, so an import never blanks a stored value by omission.
Birth date and sex are not derived from the ID here: clean_record does that when rows are stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from app.catalog import validators as v
from app.catalog.coerce import coerce, is_free_text
from app.catalog.loader import get_catalog
from app.catalog.model import Catalog, Field, FieldType
from app.catalog.validators import ValueIssue
from app.imports.mapping import ColumnMap, target_fields
from app.imports.reading import RawRow


@dataclass(frozen=True)
class CellIssue:
    row_no: int
    column: str
    raw: str | None
    field: str | None
    code: str
    message: str  # zh-CN, names row and column; never echoes the raw value (it may be an ID)
    severity: str  # 'error' | 'warning'


PLACEHOLDERS = frozenset("无 / \\ - -- — —— － －－ _ 暂无 空 null none n/a #n/a na 无无 /无".split())

# Common wording for code-list labels in township sheets, by code list ("wording:label" pairs).
_WORDING = {
    "relation_to_head": "本人:户主 妻:配偶 妻子:配偶 夫:配偶 丈夫:配偶 之妻:配偶 之夫:配偶 "
    "儿子:子 长子:子 次子:子 之子:子 三子:子 女儿:女 长女:女 次女:女 之女:女 "
    "孙子:孙子女 孙女:孙子女 外孙:孙子女 外孙女:孙子女 父亲:父母 母亲:父母 "
    "父:父母 母:父母 兄:兄弟姐妹 弟:兄弟姐妹 姐:兄弟姐妹 妹:兄弟姐妹 "
    "哥哥:兄弟姐妹 弟弟:兄弟姐妹 姐姐:兄弟姐妹 妹妹:兄弟姐妹",
    "sex": "男性:男 女性:女 m:男 f:女",
    "marital_status": "已婚(初婚):初婚 有配偶:已婚 单身:未婚",
    "political_status": "党员:中共党员 团员:共青团员 预备党员:中共预备党员",
}
LABEL_WORDING: dict[str, dict[str, str]] = {
    code: dict(pair.split(":") for pair in pairs.split()) for code, pairs in _WORDING.items()
}

_ID_FLOAT = re.compile(r"\d(\.\d+)?e\+?\d+", re.I)
_DIGITS = re.compile(r"\d+(\.\d+)?")
_YM = re.compile(r"(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*月?")
_YMD_DOTS = re.compile(r"(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[日号]?")
_PHONE_SPLIT = re.compile(r"[,，;；、/]|\s{2,}|或")
_UNITS = re.compile(r"(元|万元|亩|平方米|平米|㎡|m2|人|户|个|间|岁|年|kg|公斤|斤)$", re.I)
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")
_CJK_SPACED = re.compile(r"^[\u4e00-\u9fff]+(\s+[\u4e00-\u9fff]+)+$")


class _Cell(Exception):
    """A value with a warning to keep: raised by converters, caught per cell."""


@lru_cache(maxsize=4096)
def is_placeholder(s: str) -> bool:
    """无, /, ——, 暂无 … (short cells repeat a lot: cached)."""
    t = v.normalize_text(s).lower()
    return not t or t in PLACEHOLDERS


def _issue(row: RawRow, m: ColumnMap, raw: str | None, code: str, reason: str, severity: str) -> CellIssue:
    message = f"第{row.row_no}行“{m.header}”列：{reason}"
    return CellIssue(row.row_no, m.header, raw, m.field, code, message, severity)


@dataclass
class _Warn:
    code: str
    reason: str


def _plain_valid_id(s: str) -> bool:
    """The common case, an 18-character ID typed cleanly and valid, without normalising: what
    fails here goes through check_id_card, which gives the reason."""
    if len(s) != 18 or not s.isascii() or not s[:17].isdigit() or s[:2] not in v.PROVINCES:
        return False
    try:
        birth = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    if birth.year < 1880 or birth > date.today():
        return False
    return v.id_card_check_char(s[:17]) == s[17]


def _id_card(s: str, warns: list[_Warn]) -> str:
    if _plain_valid_id(s):
        return s
    if _ID_FLOAT.fullmatch(v.normalize_text(s)):
        raise ValueIssue(
            "id_card.precision_lost",
            "身份证号码被 Excel 存成了数字，末几位已丢失，请将该列设为文本后重新填写",
        )
    code = v.normalize_code(s)
    if len(code) == 15 and code.isascii() and code.isdigit():
        code = v.id_15_to_18(code)
        warns.append(_Warn("id_card.upgraded_15", "15位身份证号码已按 GB 11643 升级为18位"))
    return v.check_id_card(code).number


def _phone(s: str, warns: list[_Warn]) -> str:
    if len(s) == 11 and s.isascii() and s.isdigit() and s[0] == "1" and s[1] in "3456789":
        return s  # a mobile number typed cleanly
    text = v.normalize_text(s)
    parts = [p for p in _PHONE_SPLIT.split(text) if p.strip()]
    if len(parts) > 1:
        warns.append(_Warn("phone.multiple", "填写了多个电话号码，已取第一个"))
        text = parts[0]
    return v.check_phone(text)


def parse_legacy_date(s: str) -> tuple[date, bool]:
    """(date, day_known). Raises ValueIssue. Pure digits: 8 -> yyyymmdd, 6 -> yyyymm, 4 -> a year
    (refused) when 1880-2100, else like 5 an Excel serial."""
    if len(s) == 10 and s[4] == "-" and s[7] == "-" and s.isascii():
        try:
            return date.fromisoformat(s), True  # a date cell, or ISO text
        except ValueError:
            pass
    t = v.normalize_text(s)
    if _DIGITS.fullmatch(t):
        digits = t.split(".")[0]
        if "." in t and len(digits) == 4:  # 1974.02 / 1974.2
            pass
        elif len(digits) == 8:
            try:
                return date(int(t[:4]), int(t[4:6]), int(t[6:8])), True
            except ValueError:
                raise ValueIssue("date.invalid", "日期不存在，请核对年月日") from None
        elif len(digits) == 6 and "." not in t:
            y, mo = int(t[:4]), int(t[4:6])
            if 1 <= mo <= 12 and 1880 <= y <= 2100:
                return date(y, mo, 1), False
            raise ValueIssue("date.format", "日期格式无法识别，请使用如 2024-03-05 的格式")
        elif len(digits) == 4 and "." not in t and 1880 <= int(digits) <= 2100:
            raise ValueIssue("date.year_only", "只填了年份，缺少月和日")
        elif len(digits) in (4, 5):
            return v.parse_date(float(t)), True  # Excel serial (1900 date system): 1910 .. 2173
    if m := _YMD_DOTS.fullmatch(t):
        try:
            return date(int(m[1]), int(m[2]), int(m[3])), True
        except ValueError:
            raise ValueIssue("date.invalid", "日期不存在，请核对年月日") from None
    if m := _YM.fullmatch(t):
        y, mo = int(m[1]), int(m[2])
        if 1 <= mo <= 12:
            return date(y, mo, 1), False
        raise ValueIssue("date.invalid", "月份不存在，请核对")
    return v.parse_date(t), True


def _number(s: str, warns: list[_Warn]) -> str:
    t = v.normalize_text(s).replace(",", "").replace(" ", "")
    if um := _UNITS.search(t):
        if um.group(1) == "万元":
            t = t[: um.start()] + "万"
        else:
            t = t[: um.start()]
            warns.append(_Warn("number.unit", "已去掉数字后的单位"))
    if t.endswith("万"):
        try:
            return str(Decimal(t[:-1]) * 10000)
        except InvalidOperation:
            raise ValueIssue("number.format", "应为数字") from None
    return t


def _code_value(f: Field, s: str, catalog: Catalog) -> str:
    cl = catalog.codelists[f.codelist or ""]
    t = v.normalize_text(s).replace(" ", "")
    if t in cl.values:
        return t
    by_label = {label: code for code, label in cl.values.items()}
    if t in by_label:
        return by_label[t]
    wording = LABEL_WORDING.get(cl.code, {})
    for key in (t, t.lower()):
        if key in wording and wording[key] in by_label:
            return by_label[wording[key]]
    if t + "族" in by_label:  # 汉 -> 汉族
        return by_label[t + "族"]
    if t.isdigit():  # 1 for "01": Excel dropped the leading zero
        for code in cl.values:
            if code.isdigit() and int(code) == int(t):
                return code
    shown = "、".join(list(cl.values.values())[:8])
    raise ValueIssue("code.unknown", f"不在代码表“{cl.label}”中（可填：{shown}…）")


@dataclass(frozen=True)
class _Column:
    index: int
    m: ColumnMap
    path: str
    f: Field
    convert: Callable[[str, list[_Warn]], object]


def _converter(path: str, f: Field, catalog: Catalog) -> Callable[[str, list[_Warn]], object]:
    kind = f.validator.kind if f.validator else None
    if kind == "id_card":
        return lambda s, w: _id_card(s, w)
    if kind == "phone":
        return lambda s, w: _phone(s, w)
    if path.endswith("household_no"):
        # A sheet's own 户号 (1, 23, 0012) becomes village code + number on the job side,
        # which knows the village; a full 16-18 digit number is checked here.
        def household_no(s: str, w: list[_Warn]) -> object:
            t = s if s.isascii() and s.isdigit() else v.normalize_code(s)
            if t.isdigit() and len(t) <= 6:
                return t
            return coerce(f, t, catalog).value

        return household_no
    if f.type == FieldType.date:

        def day(s: str, w: list[_Warn]) -> object:
            d, day_known = parse_legacy_date(s)
            if not day_known:
                w.append(_Warn("date.day_missing", "只有年月，日按1日记录"))
            return d if f.validator is None else coerce(f, d, catalog).value

        return day
    if f.type in (FieldType.integer, FieldType.decimal):
        return lambda s, w: coerce(f, _number(s, w), catalog).value
    if f.type == FieldType.code:
        memo: dict[str, str | ValueIssue] = {}  # a column's few distinct labels, converted once

        def code(s: str, w: list[_Warn]) -> object:
            hit = memo.get(s)
            if hit is None:
                try:
                    hit = _code_value(f, s, catalog)
                except ValueIssue as e:
                    hit = e
                if len(memo) < 10_000:
                    memo[s] = hit
            if isinstance(hit, ValueIssue):
                raise ValueIssue(hit.code, hit.message)
            return hit

        return code
    if is_free_text(f):
        squeeze = f.mask.value == "name"

        def free_text(s: str, w: list[_Warn]) -> object:
            # what coerce does for free text, inline: trimmed ends, no NUL, the length limit
            t = (
                s
                if s == s.strip() and s[0] not in _ZERO_WIDTH and s[-1] not in _ZERO_WIDTH
                else v.trim_text(s)
            )
            if squeeze and " " in t and _CJK_SPACED.fullmatch(t):
                t = "".join(t.split())  # 张 三 -> 张三
            if "\x00" in t:
                raise ValueIssue("text.control", "不能包含控制字符")
            if f.max_length and len(t) > f.max_length:
                raise ValueIssue("text.too_long", f"长度不得超过 {f.max_length} 个字符")
            return t

        return free_text
    return lambda s, w: coerce(f, s, catalog).value


@dataclass
class _Plan:
    mapping: list[ColumnMap]  # held so that its id is not reused while cached
    fields: list[tuple[int, str, str | None]]  # what the plan was built from
    columns: list[tuple[int, str, Callable[[str, list[_Warn]], object], bool, ColumnMap]]
    by_path: dict[str, _Column]


_plans: dict[tuple[object, ...], _Plan] = {}


def _plan(ledger: str, mapping: list[ColumnMap], catalog: Catalog) -> _Plan:
    """The converters for a mapping, built once: keyed by the mapping list and checked against its
    current contents, so a ColumnMap changed in place gets a new plan."""
    key = (id(catalog), catalog.stamp, ledger, id(mapping))
    fields = [(m.index, m.header, m.field) for m in mapping]
    plan = _plans.get(key)
    if plan is not None and plan.mapping is mapping and plan.fields == fields:
        return plan
    targets = target_fields(ledger, catalog)
    by_path: dict[str, _Column] = {}
    for m in mapping:
        if m.field is None:
            continue
        f = targets.get(m.field)
        if f is None:
            raise KeyError(f"{ledger}: no field {m.field}")
        by_path[m.field] = _Column(m.index, m, m.field, f, _converter(m.field, f, catalog))
    columns = [(c.index, c.path, c.convert, c.f.type != FieldType.boolean, c.m) for c in by_path.values()]
    if len(_plans) > 256:
        _plans.clear()
    plan = _plans[key] = _Plan(mapping, fields, columns, by_path)
    return plan


def convert_row(ledger: str, mapping: list[ColumnMap], row: RawRow) -> tuple[dict[str, Any], list[CellIssue]]:
    """Values keyed by field path (see app.imports.mapping), coerced to catalogue types (IDs
    18-digit, dates, codes); blank and placeholder cells are absent. Issues name row, column and
    reason. A mapping to a path the ledger does not have raises KeyError."""
    plan = _plan(ledger, mapping, get_catalog())
    values: dict[str, Any] = {}
    issues: list[CellIssue] = []
    cells = row.cells
    width = len(cells)
    month_only: list[str] = []
    warns: list[_Warn] = []
    for index, path, convert, placeholders, m in plan.columns:
        if index >= width:
            continue
        raw = cells[index]
        if raw is None or not raw or raw.isspace():
            continue
        if placeholders and len(raw) <= 12:
            stripped = raw.strip()
            if len(stripped) <= 5 and is_placeholder(stripped):
                issues.append(
                    _issue(row, m, raw, "import.placeholder_empty", f"“{stripped}”按空值处理", "warning")
                )
                continue
        try:
            values[path] = convert(raw, warns)
        except ValueIssue as e:
            issues.append(_issue(row, m, raw, e.code, e.message, "error"))
            warns.clear()
            continue
        if warns:
            for w in warns:
                if w.code == "date.day_missing":
                    month_only.append(path)
                else:
                    issues.append(_issue(row, m, raw, w.code, w.reason, "warning"))
            warns = []
    if "id_number" in values or month_only:
        _against_id(row, values, plan.by_path, month_only, issues)
    return values, issues


@dataclass(frozen=True)
class _IdFacts:
    birth_date: date
    sex: str


def _id_facts(number: str) -> _IdFacts:
    """Birth date and sex of an ID check_id_card has accepted (no second full check)."""
    birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    return _IdFacts(birth, "1" if int(number[16]) % 2 else "2")


def _against_id(
    row: RawRow,
    values: dict[str, Any],
    by_path: dict[str, _Column],
    month_only: list[str],
    issues: list[CellIssue],
) -> None:
    """Birth date and sex beside the ID: fill a month-only birth date's day from the ID when they
    agree; contradictions are warnings on the sex / birth-date column."""
    number = values.get("id_number")
    info = _id_facts(number) if isinstance(number, str) else None
    columns = {path: by_path[path] for path in values.keys() & by_path.keys()}
    for path in month_only:
        d = values[path]
        col = columns[path]
        if (
            path == "birth_date"
            and info is not None
            and (d.year, d.month) == (info.birth_date.year, info.birth_date.month)
        ):
            values[path] = info.birth_date
            continue
        issues.append(
            _issue(row, col.m, row.cells[col.index], "date.day_missing", "只有年月，日按1日记录", "warning")
        )
    if info is None:
        return
    sex = values.get("sex")
    if sex in ("1", "2") and sex != info.sex and "sex" in columns:
        col = columns["sex"]
        issues.append(
            _issue(
                row,
                col.m,
                row.cells[col.index],
                "id_card.sex_mismatch",
                "性别与身份证号码第17位不一致，请核对",
                "warning",
            )
        )
    birth = values.get("birth_date")
    if (
        birth is not None
        and "birth_date" not in month_only
        and birth != info.birth_date
        and "birth_date" in columns
    ):
        col = columns["birth_date"]
        issues.append(
            _issue(
                row,
                col.m,
                row.cells[col.index],
                "id_card.birth_mismatch",
                "出生日期与身份证号码不一致，请核对",
                "warning",
            )
        )
