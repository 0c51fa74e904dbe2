"""Folding of the values the matcher compares: names, dates, phones, ID numbers, addresses.

Everything here is pure and cached where it pays (names and addresses repeat a lot in a district).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache

import opencc
from pypinyin import Style, lazy_pinyin

from app.catalog.validators import id_15_to_18

_T2S = opencc.OpenCC("t2s")
_NAME_NOISE = re.compile(r"[\s·•．.\-_'\"（）()]+")
_ADDR_NOISE = re.compile(r"[\s,，、;；:：\-—_#（）()]+")
# Southwest Mandarin (and most southern speakers) merge these; a clerk writes what was heard.
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("l", "n"), ("f", "h"))
_FUZZY_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))
# Administrative prefixes every address in one district shares: dropped before comparing tokens.
_ADMIN_PREFIX = re.compile(r"^(重庆市|重庆|.{2,6}?省)?(.{2,6}?市)?(.{1,6}?[区县])?")
_ADDR_SPLIT = re.compile(r"(?<=[街道镇乡村社区组路街巷号栋幢楼单元室弄])")


@lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """NFKC (full-width forms), traditional -> simplified (OpenCC t2s), no spaces."""
    s = unicodedata.normalize("NFKC", text).strip()
    if not s.isascii():
        s = _T2S.convert(s)
    return s


@lru_cache(maxsize=200_000)
def name_key(raw: str) -> str:
    """A person's name as compared: folded, separators (·, spaces) removed, upper-case latin."""
    return _NAME_NOISE.sub("", fold(raw)).upper()


@lru_cache(maxsize=50_000)
def _char_pinyin(ch: str) -> str:
    return lazy_pinyin(ch, style=Style.NORMAL, errors="default")[0]


@lru_cache(maxsize=200_000)
def pinyin(name: str) -> tuple[str, ...]:
    """Toneless pinyin syllables of a folded name ('张三' -> ('zhang', 'san')), character by
    character with each one's usual reading: names have no phrase context, and a heteronym
    surname (曾, 单) reads the same on both sides of a comparison."""
    return tuple(_char_pinyin(ch) for ch in name)


@lru_cache(maxsize=50_000)
def fuzzy_syllable(s: str) -> str:
    for a, b in _FUZZY_INITIALS:
        if s.startswith(a):
            s = b + s[len(a) :]
            break
    for a, b in _FUZZY_FINALS:
        if s.endswith(a):
            s = s[: -len(a)] + b
            break
    return s


@lru_cache(maxsize=200_000)
def fuzzy_pinyin(name: str) -> str:
    """Pinyin with the usual dialect merges (zh/z, sh/s, l/n, ang/an, ing/in): 张三 == 章山."""
    return " ".join(fuzzy_syllable(s) for s in pinyin(name))


def to_date(raw: object) -> date | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        return None


def swapped(d: date) -> date | None:
    """The date with day and month exchanged, if that is another valid date (05-01 <-> 01-05)."""
    if d.day > 12 or d.day == d.month:
        return None
    return date(d.year, d.day, d.month)


def birth_block(d: date) -> str:
    """Blocking key equal for a date and its day/month swap: year + the sorted (month, day) pair."""
    a, b = sorted((d.month, d.day))
    return f"{d.year}{a:02d}{b:02d}"


def phone_key(raw: object) -> str | None:
    """Digits only; mobiles as their 11 digits, landlines as their last 8 (area code optional)."""
    if raw is None:
        return None
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", str(raw)))
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) >= 11 and digits[-11] == "1":
        return digits[-11:]
    return digits[-8:] if len(digits) >= 7 else None


def id_key(raw: object) -> str | None:
    """18-digit ID number; a 15-digit one (pre-1999 cards) widened as GB 11643 says (19, check)."""
    if raw is None:
        return None
    s = unicodedata.normalize("NFKC", str(raw)).strip().upper()
    if len(s) == 15 and s.isdigit():
        return id_15_to_18(s)
    return s if len(s) == 18 else None


@lru_cache(maxsize=200_000)
def address_tokens(raw: str) -> frozenset[str]:
    """Address parts after the district prefix ('中山路街道', '12号', …) plus character bigrams
    of the rest, so '中山路街道幸福村3组' and '中山路街道幸福村三组' share most tokens."""
    s = _ADDR_NOISE.sub("", fold(raw))
    s = _ADMIN_PREFIX.sub("", s, count=1) or s
    parts = [p for p in _ADDR_SPLIT.split(s) if p]
    grams = {s[i : i + 2] for i in range(len(s) - 1)}
    return frozenset(parts) | grams


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)
