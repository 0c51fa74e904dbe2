""" "Already in the catalogue?": match a proposed label against every data item by meaning.

Labels are compared after normalisation, not as typed:
1. NFKC (full-width letters, digits and brackets become half-width), spaces dropped;
2. units and notes in brackets removed: 撂荒面积（亩） -> 撂荒面积;
3. synonyms rewritten to one word (ledgers/terms/synonyms.yaml): 身份证号码 -> 公民身份号码;
4. framing affixes removed: 是否撂荒 -> 撂荒, 撂荒面积 -> 撂荒.
Then rapidfuzz scores the two concept strings (ratio, and partial_ratio weighted by the length ratio
when the shorter has at least two characters, so 危房 inside 危房等级 counts and 危房 inside
危房改造补助金额 does not). A candidate is any item scoring at least THRESHOLD; the
proposer sees them and must confirm "not a duplicate" with a reason to go on (docs/catalogue.md).

rapidfuzz: a maintained C++ implementation of these scores (MIT), fast enough to compare a proposal
against every item of the catalogue in well under a millisecond per label.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz

from app.catalog.model import Catalog

TERMS_FILE = Path(__file__).resolve().parents[3] / "ledgers" / "terms" / "synonyms.yaml"
THRESHOLD = 80
MAX_CANDIDATES = 5
_BRACKETS = re.compile(r"[(\[{][^)\]}]*[)\]}]")


@dataclass(frozen=True)
class Terms:
    synonyms: tuple[tuple[str, str], ...]  # (word, canonical), longest word first
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]


@lru_cache
def terms() -> Terms:
    raw = yaml.safe_load(TERMS_FILE.read_text(encoding="utf-8"))
    # The canonical word maps to itself, so 公民身份号码 is not read as 公民 + 身份号码.
    pairs = [(w, group[0]) for group in raw.get("synonyms", []) for w in group]
    pairs.sort(key=lambda p: -len(p[0]))
    return Terms(tuple(pairs), tuple(raw.get("prefixes", [])), tuple(raw.get("suffixes", [])))


def concept(label: str) -> str:
    """The concept a label names, as comparable text (steps 1-4 above)."""
    s = unicodedata.normalize("NFKC", label)
    s = re.sub(r"\s+", "", s)
    s = _BRACKETS.sub("", s)
    t = terms()
    # One pass, longest word first, so a rewritten word is not rewritten again.
    out, i = [], 0
    while i < len(s):
        for word, canon in t.synonyms:
            if s.startswith(word, i):
                out.append(canon)
                i += len(word)
                break
        else:
            out.append(s[i])
            i += 1
    s = "".join(out)
    for p in t.prefixes:
        if s.startswith(p) and len(s) > len(p):
            s = s[len(p) :]
    for suf in t.suffixes:
        if s.endswith(suf) and len(s) > len(suf):
            s = s[: -len(suf)]
    return s


def score(a: str, b: str) -> float:
    """0-100: how likely two concept strings name the same data item."""
    if not a or not b:
        return 0.0
    if a == b:
        return 100.0
    best = fuzz.ratio(a, b)
    short, long_ = sorted((len(a), len(b)))
    if short >= 2:
        # One concept inside the other (危房 in 危房等级) counts, less the more the longer adds:
        # 危房 in 危房改造补助金额 is another item.
        best = max(best, fuzz.partial_ratio(a, b) * (0.6 + 0.4 * short / long_))
    return best


def candidates(catalog: Catalog, label: str, *, skip: AbstractSet[str] = frozenset()) -> list[dict[str, Any]]:
    """Items of the catalogue that may already be what `label` names, best first."""
    want = concept(label)
    found: list[dict[str, Any]] = []
    for lg in catalog.ledgers.values():
        for f in lg.fields:
            key = f"{lg.code}.{f.code}"
            if key in skip:
                continue
            s = score(want, concept(f.label))
            if s >= THRESHOLD:
                found.append(
                    {
                        "ledger": lg.code,
                        "ledger_label": lg.label,
                        "field": f.code,
                        "label": f.label,
                        "score": round(s),
                        "owner": f.owner,
                    }
                )
    found.sort(key=lambda c: (-c["score"], c["ledger"], c["field"]))
    return found[:MAX_CANDIDATES]
