"""Fellegi–Sunter scoring of a pair of person-like rows.

Each compared field falls into one *level* (exact, homophone, one character off, …); a level carries
the log2 Bayes factor log2(m/u), where m = P(level | same person) and u = P(level | different
persons). The pair's match weight is the sum over fields (a missing value contributes 0), and the
posterior match probability follows from the prior odds of a pair inside a block.

Why Fellegi–Sunter rather than a trained classifier: there is no labelled data in a district, the
weights are readable (each level is one zh-CN reason the reviewer sees), and they are the same model
Splink fits, so the P6 bench compares matching quality, not model families. The m/u values below are
priors from the shape of the data (u: how often two different residents of one district agree at
that level; m: how often the same person is recorded that way), not fitted per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from rapidfuzz.distance import Levenshtein

from app.dedupe import normalize as nz


@dataclass(frozen=True, slots=True)
class Profile:
    """One row, folded once: what blocking and scoring read."""

    name: str
    fuzzy: str  # fuzzy pinyin of the whole name, syllables joined by spaces
    birth: date | None
    birth_s: str  # YYYYMMDD, '' without a date
    sex: str | None
    phone: str | None
    id18: str | None
    address: frozenset[str]


def profile(
    row: dict[str, Any],
    address_fields: tuple[str, ...] = ("residence_address", "hukou_address"),
) -> Profile:
    name = nz.name_key(str(row.get("name") or ""))
    addr: frozenset[str] = frozenset()
    for f in address_fields:
        raw = row.get(f)
        if raw:
            addr = addr | nz.address_tokens(str(raw))
    sex = row.get("sex")
    birth = nz.to_date(row.get("birth_date"))
    return Profile(
        name=name,
        fuzzy=nz.fuzzy_pinyin(name) if name else "",
        birth=birth,
        birth_s=f"{birth.year:04d}{birth.month:02d}{birth.day:02d}" if birth else "",
        sex=str(sex) if sex in ("1", "2", 1, 2) else None,
        phone=nz.phone_key(row.get("phone")),
        id18=nz.id_key(row.get("id_number")),
        address=addr,
    )


def _w(m: float, u: float) -> float:
    return math.log2(m / u)


# (weight, zh-CN reason) per level; the last level of each field is "disagrees". u: two random
# residents of one district (1 in ~29,000 share a birth date over 80 years of births; a full name is
# shared by a few in 10,000); m: how often a township sheet records the same person at that level.
NAME_EXACT = (_w(0.80, 0.0004), "姓名一致（繁简、全半角折叠后）")
NAME_HOMOPHONE = (_w(0.08, 0.0004), "姓名同音（拼音相同，含平翘舌、前后鼻音）")
NAME_ONE_OFF = (_w(0.07, 0.002), "姓名相差一字")  # three or more characters, one differs
# Two-character names one apart: only the surname is left, no evidence either way.
NAME_SURNAME = (_w(0.03, 0.03), "姓氏相同、名相差一字")
NAME_DIFF = (_w(0.02, 0.9672), "姓名不同")
BIRTH_EXACT = (_w(0.86, 0.00004), "出生日期一致")
BIRTH_SWAPPED = (_w(0.04, 0.00004), "出生日期日月颠倒")
BIRTH_ONE_DIGIT = (_w(0.06, 0.001), "出生日期相差一位数字")
BIRTH_SAME_YEAR = (_w(0.02, 0.0125), "出生年份相同")
BIRTH_DIFF = (_w(0.02, 0.98642), "出生日期不同")
ID_EXACT = (_w(0.95, 1e-7), "身份证号一致（含15位升18位）")
# One digit apart: a typo, or two people born the same day (the sequence digits): no evidence.
ID_ONE_OFF = (_w(0.04, 0.04), "身份证号相差一位")
ID_DIFF = (_w(0.01, 0.99999), "身份证号不同")
PHONE_EXACT = (_w(0.55, 0.0005), "联系电话一致")
PHONE_DIFF = (_w(0.45, 0.9995), "联系电话不同")
ADDR_CLOSE = (_w(0.65, 0.004), "地址相近")
ADDR_PARTIAL = (_w(0.15, 0.03), "地址部分相同")
ADDR_DIFF = (_w(0.20, 0.966), "地址不同")
SEX_SAME = (_w(0.98, 0.5), "性别相同")
SEX_DIFF = (_w(0.02, 0.5), "性别不同")

# Prior odds, as a log2, that two random rows of a district's ledger are one person (about one pair
# in 65,000: a few duplicates per thousand rows among tens of thousands).
PRIOR_LOG2 = -16.0
# A pair is queued for review from this posterior on. Low on purpose: a reviewer rejects a wrong
# suggestion in one click, a duplicate never suggested stays in the ledger. Set on the P6 generator
# (scripts/bench/dedupe_p6.py), where F1 peaks between 0.05 and 0.2; revisit with the real share of
# rejected candidates once districts review them.
CANDIDATE_PROBABILITY = 0.1


def _name_level(a: Profile, b: Profile) -> tuple[float, str] | None:
    if not a.name or not b.name:
        return None
    if a.name == b.name:
        return NAME_EXACT
    if a.fuzzy == b.fuzzy:
        return NAME_HOMOPHONE
    if len(a.name) >= 2 and Levenshtein.distance(a.name, b.name) <= 1:
        return NAME_ONE_OFF if min(len(a.name), len(b.name)) >= 3 else NAME_SURNAME
    return NAME_DIFF


def _birth_level(a: Profile, b: Profile) -> tuple[float, str] | None:
    if a.birth is None or b.birth is None:
        return None
    if a.birth == b.birth:
        return BIRTH_EXACT
    if nz.swapped(a.birth) == b.birth:
        return BIRTH_SWAPPED
    if Levenshtein.distance(a.birth_s, b.birth_s) <= 1:
        return BIRTH_ONE_DIGIT
    if a.birth.year == b.birth.year:
        return BIRTH_SAME_YEAR
    return BIRTH_DIFF


def _id_level(a: Profile, b: Profile) -> tuple[float, str] | None:
    if a.id18 is None or b.id18 is None:
        return None
    if a.id18 == b.id18:
        return ID_EXACT
    if Levenshtein.distance(a.id18[:17], b.id18[:17]) <= 1:
        return ID_ONE_OFF
    return ID_DIFF


def _address_level(a: Profile, b: Profile) -> tuple[float, str] | None:
    if not a.address or not b.address:
        return None
    j = nz.jaccard(a.address, b.address)
    if j >= 0.7:
        return ADDR_CLOSE
    if j >= 0.4:
        return ADDR_PARTIAL
    return ADDR_DIFF


def match_weight(a: Profile, b: Profile) -> tuple[float, list[str]]:
    """Sum of the levels' log2 Bayes factors and the reasons of the levels that agree."""
    total = 0.0
    reasons: list[str] = []
    levels = (
        _id_level(a, b),
        _name_level(a, b),
        _birth_level(a, b),
        (PHONE_EXACT if a.phone == b.phone else PHONE_DIFF) if a.phone and b.phone else None,
        _address_level(a, b),
        (SEX_SAME if a.sex == b.sex else SEX_DIFF) if a.sex and b.sex else None,
    )
    for level in levels:
        if level is None:
            continue
        w, why = level
        total += w
        if w > 0.5 and level is not SEX_SAME:
            reasons.append(why)
    return total, reasons


def probability(weight: float) -> float:
    return float(1.0 / (1.0 + 2.0 ** -(weight + PRIOR_LOG2)))


def is_candidate(weight: float) -> bool:
    return probability(weight) >= CANDIDATE_PROBABILITY
