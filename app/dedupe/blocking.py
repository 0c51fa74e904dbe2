"""Blocking: only rows sharing at least one key are compared, so the work grows with the blocks, not
with the square of the ledger.

Keys (a pair is compared once even if it shares several):
- the fuzzy pinyin of the whole name (same name, traditional forms, homophones);
- birth date with day/month sorted + the surname's fuzzy pinyin (typos in the given name, swaps);
- birth date with day/month sorted + the given name's fuzzy pinyin (a typo in the surname);
- birth year and month + the surname's fuzzy pinyin (a typo in the day and in the given name);
- the phone number; the 18-digit ID number (15-digit ones widened).
A key shared by more than MAX_BLOCK rows (a default phone such as 00000000) is skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from app.dedupe import normalize as nz
from app.dedupe.scoring import Profile

MAX_BLOCK = 300


def keys(p: Profile) -> list[str]:
    out: list[str] = []
    if p.fuzzy:
        out.append("n" + p.fuzzy)
    if p.birth is not None and p.fuzzy:
        born = nz.birth_block(p.birth)
        syllables = p.fuzzy.split(" ")
        out.append(f"s{born}{syllables[0]}")
        if len(syllables) > 1:
            out.append(f"g{born}{' '.join(syllables[1:])}")
        out.append(f"m{p.birth.year}{p.birth.month:02d}{syllables[0]}")
    if p.phone:
        out.append("p" + p.phone)
    if p.id18:
        out.append("i" + p.id18[:17])
    return out


def _index(profiles: Iterable[Profile]) -> dict[str, list[int]]:
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(profiles):
        for k in keys(p):
            blocks[k].append(i)
    return blocks


def pairs_within(profiles: list[Profile]) -> Iterator[tuple[int, int]]:
    """Each (i, j), i < j, sharing a key: dedupe inside one list."""
    seen: set[tuple[int, int]] = set()
    for members in _index(profiles).values():
        if len(members) < 2 or len(members) > MAX_BLOCK:
            continue
        for x in range(len(members)):
            i = members[x]
            for y in range(x + 1, len(members)):
                pair = (i, members[y])
                if pair not in seen:
                    seen.add(pair)
                    yield pair


def pairs_between(left: list[Profile], right: list[Profile]) -> Iterator[tuple[int, int]]:
    """Each (i, j) with left[i] and right[j] sharing a key: incoming rows against the ledger."""
    index = _index(right)
    seen: set[tuple[int, int]] = set()
    for i, p in enumerate(left):
        for k in keys(p):
            members = index.get(k)
            if not members or len(members) > MAX_BLOCK:
                continue
            for j in members:
                if (i, j) not in seen:
                    seen.add((i, j))
                    yield i, j
