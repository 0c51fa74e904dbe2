"""Which village (社区) an imported address lies in, from the names in the division tree.

Township sheets write addresses as text: 重庆市永川区中山路街道红旗村3组12号. The village is the one whose
name, after its township's name, appears in the address (the longest such match); a village name alone
counts when no other village of the district has it. An address naming another township is outside
the importer's area.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.org.models import Region


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


@dataclass(frozen=True)
class Place:
    code: str | None  # 12-digit village code, None when only the township is known
    township: str | None  # 12-digit township code


@dataclass
class AreaIndex:
    townships: list[tuple[str, str]]  # (name, code), longest names first
    by_township: dict[str, list[tuple[str, str]]]  # township code -> [(village name, village code)]
    unique_villages: dict[str, tuple[str, str]]  # village name -> (village code, township code)
    # address -> place, filled by locate: a household's rows repeat one address, and each lookup
    # scans every township and unique village name of the district
    _seen: dict[str, Place | None] = field(default_factory=dict, repr=False, compare=False)

    def locate(self, address: str | None) -> Place | None:
        if not address:
            return None
        if address in self._seen:
            return self._seen[address]
        if len(self._seen) > 200_000:
            self._seen.clear()
        place = self._seen[address] = self._locate(_norm(address))
        return place

    def _locate(self, a: str) -> Place | None:
        towns = [(name, code) for name, code in self.townships if name in a]
        best: tuple[int, str, str] | None = None
        for town_name, town in towns:  # the township's villages after its name
            for village_name, code in self.by_township.get(town, ()):
                full = town_name + village_name
                if full in a and (best is None or len(full) > best[0]):
                    best = (len(full), code, town)
        if best is None:  # a village name no other village of the district has
            for village_name, (code, town) in self.unique_villages.items():
                if village_name in a and (best is None or len(village_name) > best[0]):
                    best = (len(village_name), code, town)
        if best is not None:
            return Place(best[1], best[2])
        if towns:
            return Place(None, towns[0][1])
        return None


async def load_area(session: AsyncSession, district_prefix: str) -> AreaIndex:
    """The townships and villages of a district (6-digit prefix) by name."""
    rows = (
        await session.execute(
            select(Region.code, Region.name, Region.level, Region.parent_code).where(
                Region.code.like(district_prefix + "%"), Region.level.in_((4, 5))
            )
        )
    ).all()
    towns = {r.code: _norm(r.name) for r in rows if r.level == 4}
    by_township: dict[str, list[tuple[str, str]]] = {}
    names: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        if r.level == 5:
            town = r.parent_code or r.code[:9] + "000"
            by_township.setdefault(town, []).append((_norm(r.name), r.code))
            names.setdefault(_norm(r.name), []).append((r.code, town))
    return AreaIndex(
        townships=sorted(((n, c) for c, n in towns.items()), key=lambda t: -len(t[0])),
        by_township=by_township,
        unique_villages={n: found[0] for n, found in names.items() if len(found) == 1},
    )
