"""Value validators for catalogue data items (DESIGN.md §3 "Natural keys and validation").

Pure functions, no database. Every check normalises its input first (NFKC, trim, upper-case codes),
returns the canonical form and raises ValueIssue with a stable code and a Chinese message. Messages
never echo the raw value: it may be an ID number and messages end up in logs and task comments.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

__all__ = [
    "PROVINCES",
    "IdCardInfo",
    "UsccResult",
    "ValueIssue",
    "check_division_code",
    "check_id_card",
    "check_id_card_consistent",
    "check_parcel_code",
    "check_phone",
    "check_range",
    "check_regex",
    "check_uscc",
    "id_card_check_char",
    "make_id_card",
    "make_uscc",
    "normalize_code",
    "normalize_text",
    "parse_bool",
    "parse_date",
    "trim_text",
    "uscc_check_char",
]


class ValueIssue(Exception):
    """A value failed validation. code: stable machine code; message: Chinese, for people.

    Never include the raw value in message."""

    def __init__(self, code: str, message: str):
        # Both go to args so the exception survives pickling (worker processes, task queues).
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- normalisation -------------------------------------------------------------------------------

# Zero-width chars survive NFKC and str.split(); pasting from web pages and WeChat adds them.
_ZERO_WIDTH_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_ZERO_WIDTH = dict.fromkeys(map(ord, _ZERO_WIDTH_CHARS))
_ENDS = re.compile(rf"\A[\s{_ZERO_WIDTH_CHARS}]+|[\s{_ZERO_WIDTH_CHARS}]+\Z")


def normalize_text(s: str) -> str:
    """NFKC (full-width -> half-width, U+3000 -> space), drop zero-width, trim, collapse spaces."""
    # Drop zero-width chars before NFKC so that composition sees the final neighbours (idempotent).
    s = unicodedata.normalize("NFKC", s.translate(_ZERO_WIDTH))
    return " ".join(s.split())


def trim_text(s: str) -> str:
    """Free text: only whitespace and zero-width chars at the ends go. Inside, the text stays as typed
    (full-width punctuation, line breaks, spacing): NFKC would turn （） into () and join lines."""
    return _ENDS.sub("", s)


def normalize_code(s: str) -> str:
    """normalize_text, then remove every space and upper-case (ID check char x -> X)."""
    return normalize_text(s).replace(" ", "").upper()


# --- resident ID number (GB 11643-1999) ----------------------------------------------------------

# Province-level codes of GB/T 2260, plus 83 (Taiwan residents' residence permit, 830000;
# Hong Kong 81 and Macao 82 permits use the GB/T 2260 codes).
PROVINCES: frozenset[str] = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82 83".split()
)
# Mainland provinces only: used after the leading "9" of the 2023 foreigners' permanent residence
# card, whose digits 2-3 are the accepting province (e.g. 911... for Beijing).
_MAINLAND = frozenset(p for p in PROVINCES if p < "70")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_MIN_BIRTH_YEAR = 1880


@dataclass(frozen=True)
class IdCardInfo:
    number: str  # normalised 18 chars
    birth_date: date
    sex: str  # GB/T 2261.1: "1" male (odd 17th digit), "2" female
    division: str  # first 6 digits ("9..." foreigners' cards: province + nationality)


def id_card_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the 17 leading digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("first17 must be 17 ASCII digits")
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def id_15_to_18(s: str) -> str:
    """GB 11643: a 15-digit ID (pre-1999 cards: birth year without "19") -> the 18-character form."""
    first17 = s[:6] + "19" + s[6:15]
    return first17 + id_card_check_char(first17)


def check_id_card(raw: str) -> IdCardInfo:
    s = normalize_code(raw)
    if len(s) != 18:
        raise ValueIssue("id_card.length", "身份证号码应为18位")
    if not (s[:17].isascii() and s[:17].isdigit() and s[17] in "0123456789X"):
        raise ValueIssue("id_card.format", "身份证号码前17位应为数字，末位为数字或X")
    if not (s[:2] in PROVINCES or (s[0] == "9" and s[1:3] in _MAINLAND)):
        raise ValueIssue("id_card.region", "身份证号码的地址码（省份）无效")
    try:
        birth = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise ValueIssue("id_card.birth_date", "身份证号码中的出生日期不是有效日期") from None
    if birth.year < _MIN_BIRTH_YEAR or birth > date.today():
        raise ValueIssue("id_card.birth_date", "身份证号码中的出生日期超出合理范围")
    if id_card_check_char(s[:17]) != s[17]:
        raise ValueIssue("id_card.checksum", "身份证号码校验位错误，请核对是否录错")
    sex = "1" if int(s[16]) % 2 else "2"
    return IdCardInfo(number=s, birth_date=birth, sex=sex, division=s[:6])


def check_id_card_consistent(info: IdCardInfo, birth_date: object, sex: object) -> None:
    """The record's birth date and sex must agree with the ID; unknown sex (0/9) never clashes.
    Values as a record holds them (a date or datetime, a code or label; anything else disagrees)."""
    if birth_date is not None:
        if isinstance(birth_date, datetime):  # datetime == date is always False; compare the day
            birth_date = birth_date.date()
        if birth_date != info.birth_date:
            raise ValueIssue("id_card.birth_mismatch", "出生日期与身份证号码不一致")
    if sex is not None:
        code = {"男": "1", "女": "2"}.get(str(sex).strip(), str(sex).strip())
        if code in ("1", "2") and code != info.sex:
            raise ValueIssue("id_card.sex_mismatch", "性别与身份证号码不一致")


def make_id_card(division6: str, birth: date, seq3: int, sex: str) -> str:
    """A valid ID number (demo data, tests). The last digit of seq3 is forced to match sex."""
    if len(division6) != 6 or not division6.isdigit() or not 0 <= seq3 <= 999:
        raise ValueError("division6: 6 digits; seq3: 0..999")
    if sex not in ("1", "2"):
        raise ValueError("sex must be '1' or '2'")
    seq = seq3 // 2 * 2 + (1 if sex == "1" else 0)
    first17 = f"{division6}{birth:%Y%m%d}{seq:03d}"
    if len(first17) != 17:
        raise ValueError("birth year must have 4 digits")
    return first17 + id_card_check_char(first17)


# --- unified social credit code (GB 32100-2015) --------------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 symbols: no I O Z S V
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 3^(i-1) mod 31, i = 1..17
_USCC_DEPTS = frozenset("123456789ANY")  # registration departments: 1-9, A (military), N, Y (other)
_USCC_RE = re.compile(rf"[{USCC_ALPHABET}]{{18}}")


@dataclass(frozen=True)
class UsccResult:
    code: str
    checksum_ok: bool  # False: well-formed but wrong check char; store it flagged, never silently


def uscc_check_char(first17: str) -> str:
    if len(first17) != 17 or any(c not in _USCC_VALUE for c in first17):
        raise ValueError("first17 must be 17 characters of the USCC alphabet")
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def check_uscc(raw: str) -> UsccResult:
    s = normalize_code(raw)
    if len(s) != 18:
        raise ValueIssue("uscc.length", "统一社会信用代码应为18位")
    if not _USCC_RE.fullmatch(s):
        raise ValueIssue("uscc.format", "统一社会信用代码含有不允许的字符（不使用I、O、Z、S、V）")
    if s[0] not in _USCC_DEPTS:
        raise ValueIssue("uscc.format", "统一社会信用代码第1位（登记管理部门）无效")
    if not s[2:8].isdigit():
        raise ValueIssue("uscc.format", "统一社会信用代码第3-8位应为行政区划代码（数字）")
    return UsccResult(code=s, checksum_ok=uscc_check_char(s[:17]) == s[17])


_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714 organisation code


def make_uscc(division6: str, org_seq: int, dept: str = "9", kind: str = "1") -> str:
    """A valid USCC (demo data, tests): org_seq becomes an 8-digit GB 11714 organisation code."""
    if dept not in _USCC_DEPTS or len(kind) != 1 or kind not in _USCC_VALUE:
        raise ValueError("dept must be one of 1-9, A, N, Y; kind one USCC alphabet char")
    if len(division6) != 6 or not division6.isdigit() or not 0 <= org_seq < 10**8:
        raise ValueError("division6: 6 digits; org_seq: 0..99999999")
    body = f"{org_seq:08d}"
    c9 = 11 - sum(int(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True)) % 11
    first17 = f"{dept}{kind}{division6}{body}{'X' if c9 == 10 else c9 % 11}"
    return first17 + uscc_check_char(first17)


# --- division, phone, parcel ---------------------------------------------------------------------

_DIVISION_LEVELS = ((0, 2), (2, 4), (4, 6), (6, 9), (9, 12), (12, 15))  # province .. grid


def check_division_code(raw: str) -> str:
    """12-digit statistical division code (2+2+2+3+3) or 15-digit grid code (village + 3 digits)."""
    s = normalize_code(raw)
    if len(s) not in (12, 15) or not s.isascii() or not s.isdigit():
        raise ValueIssue("division_code.format", "区划代码应为12位数字（网格为15位）")
    if s[:2] not in PROVINCES:
        raise ValueIssue("division_code.structure", "区划代码的省级代码无效")
    parts = [s[a:b] for a, b in _DIVISION_LEVELS if b <= len(s)]
    zero = [set(p) == {"0"} for p in parts]
    # A zero level means "this code stops above here": nothing below it may be set.
    if any(zero[i] and not all(zero[i:]) for i in range(len(zero))):
        raise ValueIssue("division_code.structure", "区划代码层级不连续：上级为0时下级也须为0")
    # A 15-digit code exists only for grids: it needs a real village and a non-zero grid number.
    if len(s) == 15 and (zero[4] or zero[5]):
        raise ValueIssue("division_code.structure", "网格代码应为村级代码加3位非零网格序号")
    return s


_MOBILE = re.compile(r"1[3-9]\d{9}")
# Area codes: 010 and 02x have 3 chars and 8-digit local numbers; all others 0xxx, 7-8 digits.
# Local numbers never start with 0 or 1 (those are prefixes and service numbers).
_LANDLINE = re.compile(r"(0(?:10|2\d))([2-9]\d{7})|(0[3-9]\d{2})([2-9]\d{6,7})")


def check_phone(raw: str) -> str:
    """Mobile -> '13812345678'; landline -> '023-49812345'. Strips +86/0086/86 and separators."""
    s = re.sub(r"[\s\-()]", "", normalize_text(raw))
    for prefix in ("+86", "0086", "86"):
        if s.startswith(prefix) and len(s) > len(prefix):
            rest = s[len(prefix) :]
            # International form drops the area code's trunk 0 (+86 23 4981 2345).
            rest = rest if rest[0] in "01" else "0" + rest
            if _MOBILE.fullmatch(rest) or _LANDLINE.fullmatch(rest):
                s = rest
            break
    if _MOBILE.fullmatch(s):
        return s
    if m := _LANDLINE.fullmatch(s):
        area, local = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return f"{area}-{local}"
    raise ValueIssue("phone.format", "电话号码格式不正确（手机11位，座机如 023-49812345）")


_PARCEL_RE = re.compile(r"(\d{6})(\d{6})([GJZ][ABCDEFGHSWXY])(\d{5})")


def check_parcel_code(raw: str) -> str:
    """宗地代码: county code 6 + cadastral zone/subzone 6 + feature code 2 letters + sequence 5."""
    s = normalize_code(raw)
    m = _PARCEL_RE.fullmatch(s)
    if not m or s[:2] not in PROVINCES:
        raise ValueIssue(
            "parcel_code.format", "宗地代码应为19位：6位县级区划+6位地籍区/子区+2位特征码+5位顺序号"
        )
    return s


# --- dates, booleans, regex, range ---------------------------------------------------------------

_TIME = r"(?:[ T](?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?)?"
_DATE_RES = (
    re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _TIME),
    re.compile(r"(\d{4})()(\d{2})(\d{2})"),
    re.compile(r"(\d{4})\s*(年)\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]"),
)
_EXCEL_MAX = 2958465  # 9999-12-31


def _from_excel_serial(x: float) -> date:
    # 1900 date system: serial 1 = 1900-01-01, and Excel (after Lotus 1-2-3) counts the
    # non-existent 1900-02-29 as serial 60, so later serials are one day off from a plain count.
    if not math.isfinite(x) or not 1 <= x < _EXCEL_MAX + 1:
        raise ValueIssue("date.format", "日期格式无法识别")
    n = int(x)  # a fractional part is a time of day
    if n == 60:
        raise ValueIssue("date.invalid", "日期不存在（Excel 的 1900年2月29日）")
    return date(1899, 12, 31 if n < 60 else 30) + timedelta(days=n)


def parse_date(raw: object) -> date:
    """A date as township sheets hold it: date objects, text in common forms, Excel serials."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, numbers.Real) and not isinstance(raw, bool):
        return _from_excel_serial(float(raw))
    if isinstance(raw, str):
        s = normalize_text(raw)
        for rx in _DATE_RES:
            if m := rx.fullmatch(s):
                try:
                    return date(int(m[1]), int(m[3]), int(m[4]))
                except ValueError:
                    raise ValueIssue("date.invalid", "日期不存在，请核对年月日") from None
    raise ValueIssue("date.format", "日期格式无法识别，请使用如 2024-03-05 的格式")


_TRUE = frozenset("是 有 对 真 y yes true t 1 √ ✓ ✔".split())
_FALSE = frozenset("否 无 没有 错 假 n no false f 0 × ✗ ✘".split())


def parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, numbers.Real) and raw in (0, 1):
        return raw == 1
    if isinstance(raw, str):
        s = normalize_text(raw).lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    raise ValueIssue("boolean.format", "应填写“是”或“否”")


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)  # a bad pattern is a catalogue bug: let re.error propagate


def check_regex(raw: str, pattern: str) -> str:
    s = normalize_text(raw)
    if not _compiled(pattern).fullmatch(s):
        raise ValueIssue("regex.mismatch", "格式不符合数据标准的要求")
    return s


# Patterns written by people at run time (a template's gap column) are matched by RE2: linear in the
# input whatever the pattern, so no pattern and cell can stall the service. RE2 refuses what it can't
# run in linear time (backreferences, lookaround) and patterns whose program is too big.
PATTERN_MAX_LENGTH = 200
_RE2_MAX_MEM = 4 << 20


class PatternRefused(ValueError):
    pass


@lru_cache(maxsize=512)
def compile_pattern(pattern: str):
    """An RE2 program for a user-supplied pattern, or PatternRefused."""
    import re2

    if len(pattern) > PATTERN_MAX_LENGTH:
        raise PatternRefused("too long")
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        raise PatternRefused(str(e)) from None


def check_pattern(raw: str, pattern: str) -> str:
    s = normalize_text(raw)
    try:
        matched = compile_pattern(pattern).fullmatch(s)
    except PatternRefused:  # admitted before this engine: refuse the value, never fall back to re
        matched = None
    if not matched:
        raise ValueIssue("regex.mismatch", "格式不符合模板要求")
    return s


def check_range(value: float, min: float | None, max: float | None) -> None:  # noqa: A002
    """Inclusive bounds; None means unbounded. Written as 'not >=' so NaN fails too."""
    if min is not None and not value >= min:
        raise ValueIssue("range.below", f"数值不得小于 {min}")
    if max is not None and not value <= max:
        raise ValueIssue("range.above", f"数值不得大于 {max}")
